/**
 * Hold mode through the PostgreSQL connector, with the real psql: a service's DELETE waits
 * for a reviewer and completes with its row count when approved; denial, expiry, N
 * approvals, self-approval and reviewer checks; the caller going away cancels the request;
 * the CLI approves; every step is in the audit trail. Store: SQLite in data_dir.
 */
import t from 'tap';
import { spawn, execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { readEvents } from '@gatehouse/audit';
import type { Approval } from '@gatehouse/approvals';
import { connectorsYaml, dbUpstream, postgresConnector } from '../../lib/postgres.js';
import { createTestDb, direct, psql } from '../postgres/pg-env.js';
import { api, approve, deny, kindsOf, sleep, startApprovalsGateway, TOK, waitForApproval } from './env.js';

const run = promisify(execFile);
const BIN = fileURLToPath(new URL('../../../../gateway/bin/gatehouse.js', import.meta.url));
const RULE = '{ name: reviewed-deletes, match: { statement: [delete] }, action: review }';

t.test('approvals in hold mode through the PostgreSQL connector', async (t) => {
  const db = await createTestDb('aph');
  const conn = (name: string, review: string) => postgresConnector({ name, upstream: dbUpstream(db, 'disable', { password: false }), rules: [RULE], extra: [`review: ${review}`] });
  const tg = await startApprovalsGateway(
    connectorsYaml([
      conn('pg', '{ reviewers: { groups: [dba] }, mode: hold, timeout: 30s }'),
      conn('pg2', '{ reviewers: { groups: [dba] }, mode: hold, timeout: 30s, approvals: 2 }'),
      conn('pgshort', '{ reviewers: { groups: [dba] }, mode: hold, timeout: 1500ms }'),
    ]),
  );
  t.teardown(async () => {
    await tg.stop();
    await db.drop();
  });
  const admin = tg.adminUrl;
  const reset = () =>
    direct(
      db,
      `DROP TABLE IF EXISTS accounts; CREATE TABLE accounts (id int PRIMARY KEY, region text);
       INSERT INTO accounts SELECT g, CASE WHEN g <= 3 THEN 'eu' ELSE 'us' END FROM generate_series(1, 10) g`,
    );
  const count = async () => (await direct<{ n: number }>(db, 'SELECT count(*)::int AS n FROM accounts')).rows[0].n;
  const DELETE = "DELETE FROM accounts WHERE region = 'eu'";
  const isDelete = (connector: string) => (a: Approval) => a.connector === connector && a.unit.text === DELETE;

  t.test('approved: psql completes with the row count; reviewer checks on the way', async (t) => {
    await reset();
    const running = psql(tg.address('pg'), TOK.billing, ['-c', DELETE], { sslmode: 'disable' });
    const a = await waitForApproval(admin, isDelete('pg'));
    t.equal(a.requester.subject, 'svc:billing');
    t.equal(a.rule, 'reviewed-deletes');
    t.equal(a.mode, 'hold');
    t.equal(a.required, 1);
    t.equal(a.protocol, 'postgres');
    t.equal(await count(), 10, 'nothing ran while held');

    t.equal((await api(admin, TOK.carol, 'POST', `/api/v1/approvals/${a.id}/approve`, {})).status, 400, 'a reason is required');
    t.equal((await api(admin, TOK.carol, 'POST', `/api/v1/approvals/${a.id}/approve`, { reason: '  ' })).status, 400, 'a blank reason too');
    t.equal((await approve(admin, TOK.erin, a.id)).status, 403, 'reviewer role, but not a reviewer of this connector');
    t.equal((await approve(admin, TOK.root, a.id)).status, 403, 'admins approve only where review.reviewers names them');
    t.equal((await approve(admin, TOK.etl, a.id)).status, 403, 'no role at all');
    t.equal((await approve(admin, TOK.alice, a.id)).status, 403, 'an auditor reads but does not approve');
    t.equal((await api(admin, TOK.alice, 'GET', `/api/v1/approvals/${a.id}`)).status, 200, 'an auditor reads');
    t.equal((await approve(admin, TOK.carol, '00000000-0000-4000-8000-000000000000')).status, 404);

    const ok = await approve(admin, TOK.carol, a.id, 'ticket OPS-1');
    t.equal(ok.status, 200);
    t.equal(ok.body.status, 'approved');
    t.same(
      ok.body.approvals.map((v) => [v.reviewer, v.reason]),
      [['carol', 'ticket OPS-1']],
    );
    const r = await running;
    t.equal(r.code, 0, r.stderr);
    t.equal(r.stdout.trim(), 'DELETE 3');
    t.match(r.stderr, new RegExp(`NOTICE:  gatehouse: waiting for approval of request ${a.id}`), 'psql shows why it waits');
    t.equal(await count(), 7);
    t.equal((await approve(admin, TOK.dave, a.id)).status, 409, 'used: no longer pending');
    t.equal((await api<Approval>(admin, TOK.carol, 'GET', `/api/v1/approvals/${a.id}`)).body.status, 'used');
    t.same(kindsOf(tg.dataDir, a.id), ['approval.requested', 'approval.approved', 'approval.used']);
    const unit = readEvents(tg.dataDir, { connector: 'pg', kind: 'unit', limit: 1000 }).find((e) => e.unit?.text === DELETE);
    t.same(unit?.decision, { action: 'allow', rule: 'reviewed-deletes' }, 'the unit ran under the review rule');
    t.equal(unit?.result?.rows, 3);
  });

  t.test('denied: psql gets an error naming the request and the reviewer; nothing ran', async (t) => {
    await reset();
    const running = psql(tg.address('pg'), TOK.billing, ['-c', DELETE], { sslmode: 'disable' });
    const a = await waitForApproval(admin, isDelete('pg'));
    const d = await deny(admin, TOK.dave, a.id, 'use the archive job');
    t.equal(d.status, 200);
    t.equal(d.body.status, 'denied');
    t.same(d.body.denial && [d.body.denial.reviewer, d.body.denial.reason], ['dave', 'use the archive job']);
    const r = await running;
    t.match(r.stderr, new RegExp(`ERROR:  gatehouse: denied by rule "reviewed-deletes": approval request ${a.id} was denied by dave: use the archive job`));
    t.equal(await count(), 10);
    t.equal((await approve(admin, TOK.carol, a.id)).status, 409, 'denied: not pending');
    t.same(kindsOf(tg.dataDir, a.id), ['approval.requested', 'approval.denied']);
  });

  t.test('self-approval is refused even for a reviewer', async (t) => {
    await reset();
    const running = psql(tg.address('pg'), TOK.ops, ['-c', DELETE], { sslmode: 'disable' });
    const a = await waitForApproval(admin, (x) => isDelete('pg')(x) && x.requester.subject === 'svc:ops');
    const self = await approve(admin, TOK.ops, a.id);
    t.equal(self.status, 403);
    t.match((self.body as unknown as { detail: string }).detail, /cannot review it/);
    t.equal((await deny(admin, TOK.ops, a.id)).status, 403, 'nor deny it');
    t.equal((await approve(admin, TOK.carol, a.id)).status, 200);
    t.equal((await running).stdout.trim(), 'DELETE 3');
  });

  t.test('two approvals needed: one is not enough, the same reviewer twice is not two', async (t) => {
    await reset();
    const running = psql(tg.address('pg2'), TOK.billing, ['-c', DELETE], { sslmode: 'disable' });
    const a = await waitForApproval(admin, isDelete('pg2'));
    t.equal(a.required, 2);
    const first = await approve(admin, TOK.carol, a.id);
    t.equal(first.body.status, 'pending', 'one of two');
    t.equal((await approve(admin, TOK.carol, a.id)).status, 409, 'carol again');
    await sleep(300);
    t.equal(await count(), 10, 'still held after one approval');
    const second = await approve(admin, TOK.dave, a.id);
    t.equal(second.body.status, 'approved');
    t.equal((await running).stdout.trim(), 'DELETE 3');
    t.same(kindsOf(tg.dataDir, a.id), ['approval.requested', 'approval.approved', 'approval.approved', 'approval.used']);
  });

  t.test('expiry: the caller gets an error naming the request; approving later is refused', async (t) => {
    await reset();
    const started = Date.now();
    const r = await psql(tg.address('pgshort'), TOK.billing, ['-c', DELETE], { sslmode: 'disable' });
    const id = /request ([0-9a-f-]{36}) expired/.exec(r.stderr)?.[1];
    t.ok(id, `psql names the expired request: ${r.stderr}`);
    t.ok(Date.now() - started >= 1400, 'it waited for the timeout');
    t.equal(await count(), 10);
    t.equal((await approve(admin, TOK.carol, id!)).status, 409);
    t.same(kindsOf(tg.dataDir, id!), ['approval.requested', 'approval.expired']);
  });

  t.test('a caller that goes away while held cancels its request (audited)', async (t) => {
    await reset();
    const { host, port } = tg.address('pg');
    const child = spawn('psql', ['-X', '-At', `host=${host} port=${port} user=x dbname=x sslmode=disable`, '-c', DELETE], {
      env: { ...process.env, PGPASSWORD: TOK.billing },
      stdio: 'ignore',
    });
    const a = await waitForApproval(admin, isDelete('pg'));
    child.kill('SIGKILL');
    const cancelled = await waitForApproval(admin, (x) => x.id === a.id, 'cancelled', 5000);
    t.equal(cancelled.status, 'cancelled');
    t.equal((await approve(admin, TOK.carol, a.id)).status, 409);
    t.same(kindsOf(tg.dataDir, a.id), ['approval.requested', 'approval.cancelled']);
    t.equal(await count(), 10);
  });

  t.test('the CLI lists and approves', async (t) => {
    await reset();
    const running = psql(tg.address('pg'), TOK.billing, ['-c', DELETE], { sslmode: 'disable' });
    const a = await waitForApproval(admin, isDelete('pg'));
    const env = { ...process.env, GATEHOUSE_TOKEN: TOK.carol };
    const list = await run('node', [BIN, 'approvals', 'list', '--url', admin], { env });
    t.match(list.stdout, /^ID\s+STATUS\s+CONNECTOR\s+REQUESTER/);
    t.match(list.stdout, new RegExp(`${a.id}\\s+pending\\s+pg\\s+svc:billing\\s+reviewed-deletes\\s+0/1`));
    const noReason = await run('node', [BIN, 'approvals', 'approve', a.id, '--url', admin], { env }).catch((e: { code: number; stderr: string }) => e);
    t.equal((noReason as { code: number }).code, 2);
    t.match((noReason as { stderr: string }).stderr, /needs --reason/);
    const other = await run('node', [BIN, 'approvals', 'approve', a.id, '--reason', 'x', '--url', admin], { env: { ...env, GATEHOUSE_TOKEN: TOK.erin } }).catch(
      (e: { code: number; stderr: string }) => e,
    );
    t.equal((other as { code: number }).code, 1);
    t.match((other as { stderr: string }).stderr, /403: erin is not a reviewer for connector pg/);
    const ok = await run('node', [BIN, 'approvals', 'approve', a.id, '--reason', 'CLI check', '--url', admin], { env });
    t.match(ok.stdout, new RegExp(`${a.id}: approved \\(1/1 approvals\\)`));
    t.equal((await running).stdout.trim(), 'DELETE 3');
  });
});
