/**
 * Reject mode and grants through the PostgreSQL connector (real psql): the caller is refused
 * at once with the request id; after approval the same unit — same identity, connector and
 * text — runs once, then is refused again; another text or another identity is not covered.
 * A grant lets a service's reviewed units through for a while without a request. Bounds:
 * max_pending per identity.
 */
import t from 'tap';
import type { Approval, Grant } from '@gatehouse/approvals';
import { connectorsYaml, dbUpstream, postgresConnector } from '../../lib/postgres.js';
import { createTestDb, direct, psql } from '../postgres/pg-env.js';
import { api, approvalEvents, approve, kindsOf, startApprovalsGateway, TOK } from './env.js';

const RULE = '{ name: reviewed-deletes, match: { statement: [delete] }, action: review }';

t.test('reject mode, grants and bounds', async (t) => {
  const db = await createTestDb('apr');
  const conn = (name: string) =>
    postgresConnector({
      name,
      upstream: dbUpstream(db, 'disable', { password: false }),
      rules: [RULE],
      extra: ['review: { reviewers: { groups: [dba] }, mode: reject, timeout: 1m }'],
    });
  const tg = await startApprovalsGateway(`approvals: { max_pending: 3 }\n${connectorsYaml([conn('pg'), conn('pgb')])}`);
  t.teardown(async () => {
    await tg.stop();
    await db.drop();
  });
  const admin = tg.adminUrl;
  await direct(db, `CREATE TABLE accounts (id int PRIMARY KEY, region text); INSERT INTO accounts SELECT g, 'r' || (g % 5) FROM generate_series(1, 50) g`);
  const sql = (n: number) => `DELETE FROM accounts WHERE region = 'r${n}'`;
  const run = (token: string, text: string, connector = 'pg') => psql(tg.address(connector), token, ['-c', text], { sslmode: 'disable' });
  const requestId = (stderr: string) => /approval request ([0-9a-f-]{36})/.exec(stderr)?.[1];

  t.test('refused at once naming the request; after approval the same unit runs once', async (t) => {
    const first = await run(TOK.billing, sql(1));
    const id = requestId(first.stderr);
    t.ok(id, first.stderr);
    t.match(first.stderr, /ERROR: {2}gatehouse: approval request [0-9a-f-]{36} created \(rule "reviewed-deletes"\); retry the same unit once it is approved, before \d{4}-/);
    const again = await run(TOK.billing, sql(1));
    t.equal(requestId(again.stderr), id, 'a retry before approval names the same pending request');
    const pending = await api<Approval>(admin, TOK.carol, 'GET', `/api/v1/approvals/${id}`);
    t.equal(pending.body.mode, 'reject');
    t.equal(pending.body.status, 'pending');
    t.equal((await approve(admin, TOK.carol, id!)).body.status, 'approved');

    t.match((await run(TOK.etl, sql(1))).stderr, /approval request .* created/, 'another identity is not covered');
    t.match((await run(TOK.billing, sql(2))).stderr, /approval request .* created/, 'another statement is not covered');
    t.match((await run(TOK.billing, sql(1), 'pgb')).stderr, /approval request .* created/, 'another connector is not covered');

    const ok = await run(TOK.billing, sql(1));
    t.equal(ok.code, 0, ok.stderr);
    t.equal(ok.stdout.trim(), 'DELETE 10');
    const once = await run(TOK.billing, sql(1));
    const newId = requestId(once.stderr);
    t.ok(newId && newId !== id, 'single use: the next try opens a new request');
    t.equal((await api<Approval>(admin, TOK.carol, 'GET', `/api/v1/approvals/${id}`)).body.status, 'used');
    t.same(kindsOf(tg.dataDir, id!), ['approval.requested', 'approval.approved', 'approval.used']);
  });

  t.test('max_pending bounds the open requests of one identity', async (t) => {
    // svc:etl has one (above); billing has one (the single-use retry). Fill etl up to 3.
    await run(TOK.etl, sql(3));
    await run(TOK.etl, sql(4));
    const over = await run(TOK.etl, 'DELETE FROM accounts WHERE id = 1');
    t.match(over.stderr, /too many open approval requests for svc:etl \(max 3\)/);
    const pending = (await api<{ approvals: Approval[] }>(admin, TOK.carol, 'GET', '/api/v1/approvals?status=pending')).body.approvals;
    t.equal(pending.filter((a) => a.requester.subject === 'svc:etl').length, 3);
    t.equal((await api(admin, TOK.carol, 'GET', '/api/v1/approvals?status=bogus')).status, 400);
  });

  t.test('a grant lets reviewed units through without a request, for its connector and subject only', async (t) => {
    // Below max_pending again: deny svc:billing's open requests.
    for (const a of (await api<{ approvals: Approval[] }>(admin, TOK.carol, 'GET', '/api/v1/approvals?status=pending')).body.approvals) {
      if (a.requester.subject === 'svc:billing') t.equal((await api(admin, TOK.dave, 'POST', `/api/v1/approvals/${a.id}/deny`, { reason: 'clean-up' })).status, 200);
    }
    const before = (await api<{ approvals: Approval[] }>(admin, TOK.carol, 'GET', '/api/v1/approvals?status=all')).body.approvals.length;
    const bad = await api(admin, TOK.carol, 'POST', '/api/v1/grants', { subject: 'svc:billing', connector: 'pg', minutes: 30 });
    t.equal(bad.status, 400, 'a reason is required');
    t.equal((await api(admin, TOK.carol, 'POST', '/api/v1/grants', { subject: 'svc:billing', connector: 'pg', minutes: 0, reason: 'x' })).status, 400, 'minutes ≥ 1');
    t.equal((await api(admin, TOK.erin, 'POST', '/api/v1/grants', { subject: 'svc:billing', connector: 'pg', minutes: 30, reason: 'x' })).status, 403, 'not a reviewer of pg');
    t.equal((await api(admin, TOK.ops, 'POST', '/api/v1/grants', { subject: 'svc:ops', connector: 'pg', minutes: 30, reason: 'x' })).status, 403, 'not to oneself');
    t.equal((await api(admin, TOK.carol, 'POST', '/api/v1/grants', { subject: 'svc:billing', connector: 'nope', minutes: 30, reason: 'x' })).status, 404);
    const g = await api<Grant>(admin, TOK.carol, 'POST', '/api/v1/grants', { subject: 'svc:billing', connector: 'pg', minutes: 30, reason: 'quarter-end clean-up' });
    t.equal(g.status, 200);
    t.equal(g.body.grantedBy, 'carol');
    t.ok(Date.parse(g.body.expiresAt) - Date.now() > 29 * 60_000);
    const listed = (await api<{ grants: Grant[] }>(admin, TOK.alice, 'GET', '/api/v1/grants')).body.grants;
    t.ok(listed.some((x) => x.id === g.body.id));

    const a = await run(TOK.billing, 'DELETE FROM accounts WHERE id = 2');
    t.equal(a.stdout.trim(), 'DELETE 1', a.stderr);
    const b = await run(TOK.billing, 'DELETE FROM accounts WHERE id = 3');
    t.equal(b.stdout.trim(), 'DELETE 1', 'more than once, within the window');
    t.match((await run(TOK.billing, 'DELETE FROM accounts WHERE id = 4', 'pgb')).stderr, /approval request [0-9a-f-]{36} created/, 'another connector is not granted');
    const after = (await api<{ approvals: Approval[] }>(admin, TOK.carol, 'GET', '/api/v1/approvals?status=all')).body.approvals.length;
    t.equal(after, before + 1, 'no request for the granted units (one for the other connector)');
    const ev = approvalEvents(tg.dataDir);
    t.ok(ev.some((e) => e.kind === 'approval.granted' && e.identity?.subject === 'carol' && (e.meta?.grant as Grant).subject === 'svc:billing'));
    t.equal(ev.filter((e) => e.kind === 'approval.used' && e.meta?.grant === g.body.id).length, 2, 'each granted unit is audited');
  });
});
