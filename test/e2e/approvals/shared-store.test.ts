/**
 * The shared PostgreSQL store (a throwaway database per test): two gateways on one store;
 * a unit held on gateway A is approved through gateway B's admin API, and A releases it;
 * B's event stream and list show A's requests; reject-mode approvals made on B are used on A;
 * a store that cannot be reached refuses reviewed units (fail closed), naming the rule.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Approval } from '@gatehouse/approvals';
import { connectorsYaml, dbUpstream, postgresConnector } from '../../lib/postgres.js';
import { ADMIN, createTestDb, direct, psql } from '../postgres/pg-env.js';
import { api, approve, kindsOf, startApprovalsGateway, TOK, waitForApproval } from './env.js';

const RULE = '{ name: reviewed-deletes, match: { statement: [delete] }, action: review }';

async function admin(sql: string): Promise<void> {
  const c = new pg.Client(ADMIN);
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

t.test('two gateways sharing a PostgreSQL approvals store', async (t) => {
  const db = await createTestDb('aps');
  const store = `gh_approvals_${randomBytes(4).toString('hex')}`;
  await admin(`CREATE DATABASE ${store}`);
  const yaml = `approvals: { store: postgres, postgres_url: "postgres://postgres@127.0.0.1:5432/${store}" }
${connectorsYaml([
  postgresConnector({
    name: 'pg',
    upstream: dbUpstream(db, 'disable', { password: false }),
    rules: [RULE],
    extra: ['review: { reviewers: { groups: [dba] }, mode: hold, timeout: 30s }'],
  }),
  postgresConnector({
    name: 'pgr',
    upstream: dbUpstream(db, 'disable', { password: false }),
    rules: [RULE],
    extra: ['review: { reviewers: { groups: [dba] }, mode: reject, timeout: 1m }'],
  }),
])}`;
  // A polls only every 20 s: releasing its held unit at once needs B's NOTIFY.
  const a = await startApprovalsGateway(yaml, {}, { pollMs: 20_000 });
  const b = await startApprovalsGateway(yaml);
  t.teardown(async () => {
    await a.stop();
    await b.stop();
    await admin(`DROP DATABASE IF EXISTS ${store} WITH (FORCE)`);
    await db.drop();
  });
  await direct(
    db,
    `CREATE TABLE accounts (id int PRIMARY KEY, region text); INSERT INTO accounts SELECT g, CASE WHEN g <= 3 THEN 'eu' ELSE 'us' END FROM generate_series(1, 10) g`,
  );
  const DELETE = "DELETE FROM accounts WHERE region = 'eu'";

  t.test('held on A, approved through B, released on A', async (t) => {
    const running = psql(a.address('pg'), TOK.billing, ['-c', DELETE], { sslmode: 'disable' });
    const seen = await waitForApproval(b.adminUrl, (x) => x.connector === 'pg' && x.unit.text === DELETE);
    const started = Date.now();
    const ok = await approve(b.adminUrl, TOK.carol, seen.id, 'approved on the other gateway');
    t.equal(ok.status, 200);
    const r = await running;
    t.ok(Date.now() - started < 3000, `A noticed through LISTEN/NOTIFY (${Date.now() - started} ms)`);
    t.equal(r.stdout.trim(), 'DELETE 3', r.stderr);
    t.equal((await api<Approval>(b.adminUrl, TOK.carol, 'GET', `/api/v1/approvals/${seen.id}`)).body.status, 'used');
    // Each gateway audits what it did: A the request and its use, B the approval.
    t.same(kindsOf(a.dataDir, seen.id), ['approval.requested', 'approval.used']);
    t.same(kindsOf(b.dataDir, seen.id), ['approval.approved']);
  });

  t.test('a reject-mode approval made on B is used once on A', async (t) => {
    const text = 'DELETE FROM accounts WHERE id = 5';
    const first = await psql(a.address('pgr'), TOK.billing, ['-c', text], { sslmode: 'disable' });
    const id = /approval request ([0-9a-f-]{36})/.exec(first.stderr)?.[1];
    t.ok(id, first.stderr);
    t.equal((await approve(b.adminUrl, TOK.dave, id!)).status, 200);
    t.equal((await psql(a.address('pgr'), TOK.billing, ['-c', text], { sslmode: 'disable' })).stdout.trim(), 'DELETE 1');
    t.match((await psql(b.address('pgr'), TOK.billing, ['-c', text], { sslmode: 'disable' })).stderr, /approval request [0-9a-f-]{36} created/, 'used: not again, on any gateway');
  });

  t.test('an unreachable store refuses the unit (fail closed)', async (t) => {
    await admin(`DROP DATABASE ${store} WITH (FORCE)`);
    const r = await psql(a.address('pg'), TOK.billing, ['-c', 'DELETE FROM accounts WHERE id = 6'], { sslmode: 'disable' });
    t.match(r.stderr, /ERROR: {2}gatehouse: requires approval by rule "reviewed-deletes"; the approval store is unavailable/);
    t.equal((await direct<{ n: number }>(db, 'SELECT count(*)::int AS n FROM accounts WHERE id = 6')).rows[0].n, 1, 'nothing ran');
    await admin(`CREATE DATABASE ${store}`); // for a clean stop
  });
});
