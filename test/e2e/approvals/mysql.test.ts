/**
 * Approvals through the MySQL connector: a reviewed statement held (real `mariadb` CLI) runs
 * the moment it is approved; a prepared statement (mysql2 `execute`, the binary protocol) is
 * reviewed at each execute with the SHA-256 of its parameter values, so an approval for one
 * value does not cover another, and it is used once.
 */
import t from 'tap';
import type { Approval } from '@gatehouse/approvals';
import { connectorsYaml } from '../../lib/postgres.js';
import { createTestDb, direct, gatewayConn, mariadb } from '../mysql/my-env.js';
import { api, approve, kindsOf, startApprovalsGateway, TOK, waitForApproval } from './env.js';

t.test('MySQL: hold with the mariadb CLI, reject mode bound to the parameters with mysql2', async (t) => {
  const db = await createTestDb('apmy');
  const connector = (name: string, mode: string) => `  - name: ${name}
    type: mysql
    listen: 127.0.0.1:0
    upstream: { address: 127.0.0.1:3306, database: ${db.database}, user: ${db.user}, password: "\${env:MYSQL_PASSWORD}", tls: { mode: disable } }
    allow: [ { groups: [payments] } ]
    rules:
      - { name: reviewed-deletes, match: { statement: [delete] }, action: review }
    review: { reviewers: { groups: [dba] }, mode: ${mode}, timeout: 30s }`;
  const tg = await startApprovalsGateway(connectorsYaml([connector('my', 'hold'), connector('myr', 'reject')]), { MYSQL_PASSWORD: db.password });
  t.teardown(async () => {
    await tg.stop();
    await db.drop();
  });
  await direct(db, `CREATE TABLE accounts (id int PRIMARY KEY, region varchar(8)); INSERT INTO accounts SELECT seq, CONCAT('r', seq % 5) FROM seq_1_to_50`);
  const count = async (region: string) => ((await direct(db, `SELECT count(*) AS n FROM accounts WHERE region = '${region}'`)) as Array<{ n: number }>)[0].n;

  t.test('hold: the CLI waits, nothing runs, the approval releases it', async (t) => {
    const running = mariadb(tg.address('my'), TOK.billing, ['-D', db.database, '-e', "DELETE FROM accounts WHERE region = 'r1'"]);
    const request = await waitForApproval(tg.adminUrl, (a) => a.connector === 'my' && a.unit.text.includes("'r1'"));
    t.equal(request.protocol, 'mysql');
    t.equal(await count('r1'), 10, 'held: nothing ran');
    t.equal((await approve(tg.adminUrl, TOK.carol, request.id)).status, 200);
    const done = await running;
    t.equal(done.code, 0, done.stderr);
    t.equal(await count('r1'), 0, 'it ran once approved');
    t.same(kindsOf(tg.dataDir, request.id), ['approval.requested', 'approval.approved', 'approval.used']);
  });

  t.test('reject: a prepared execute is bound to its parameter values', async (t) => {
    const c = await gatewayConn(tg.address('myr'), TOK.billing, { database: db.database });
    t.teardown(() => c.end());
    const del = (region: string) =>
      c.execute('DELETE FROM accounts WHERE region = ?', [region]).then(
        ([r]) => ({ ok: true as const, rows: (r as { affectedRows: number }).affectedRows }),
        (e: Error) => ({ ok: false as const, message: e.message }),
      );
    const requestId = (m: string) => /approval request ([0-9a-f-]{36})/.exec(m)?.[1];

    const first = await del('r2');
    const id = first.ok ? undefined : requestId(first.message);
    t.ok(id, 'refused, naming the request');
    t.equal(await count('r2'), 10, 'nothing ran');
    const request = (await api<Approval>(tg.adminUrl, TOK.carol, 'GET', `/api/v1/approvals/${id}`)).body;
    t.match(request.unit, { text: 'DELETE FROM accounts WHERE region = ?', paramsHash: /^[0-9a-f]{64}$/ });
    t.equal((await approve(tg.adminUrl, TOK.carol, id!)).status, 200);

    const other = await del('r3');
    t.notOk(other.ok, 'another value is not covered');
    t.equal(await count('r3'), 10);
    t.same(await del('r2'), { ok: true, rows: 10 }, 'the approved value runs');
    const again = await del('r2');
    t.notOk(again.ok, 'once');
    t.equal((await api<Approval>(tg.adminUrl, TOK.carol, 'GET', `/api/v1/approvals/${id}`)).body.status, 'used');
  });
});
