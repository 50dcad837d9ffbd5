/**
 * An approval covers the statement's parameters, not only its text: through the extended
 * protocol (the `pg` driver), a reviewed prepared statement is reviewed at its Bind with the
 * SHA-256 of the bound values. An approved `DELETE … WHERE region = $1` for 'r1' does not let
 * the same text run for 'r2'; it runs once for 'r1'; nothing runs before the approval.
 */
import t from 'tap';
import type { Approval } from '@gatehouse/approvals';
import { connectorsYaml, dbUpstream, postgresConnector } from '../../lib/postgres.js';
import { createTestDb, direct, gatewayClient } from '../postgres/pg-env.js';
import { api, approve, startApprovalsGateway, TOK } from './env.js';

t.test('reject mode: an approval is bound to the bound parameters', async (t) => {
  const db = await createTestDb('apparams');
  const tg = await startApprovalsGateway(
    connectorsYaml([
      postgresConnector({
        name: 'pg',
        upstream: dbUpstream(db, 'disable', { password: false }),
        rules: ['{ name: reviewed-deletes, match: { statement: [delete] }, action: review }'],
        extra: ['review: { reviewers: { groups: [dba] }, mode: reject, timeout: 1m }'],
      }),
    ]),
  );
  t.teardown(async () => {
    await tg.stop();
    await db.drop();
  });
  await direct(db, `CREATE TABLE accounts (id int PRIMARY KEY, region text); INSERT INTO accounts SELECT g, 'r' || (g % 5) FROM generate_series(1, 50) g`);
  const count = async (region: string) => (await direct<{ n: string }>(db, 'SELECT count(*) AS n FROM accounts WHERE region = $1', [region])).rows[0].n;
  const c = await gatewayClient(tg.address('pg'), TOK.billing, { ssl: false });
  t.teardown(() => c.end());
  const del = (region: string) =>
    c.query('DELETE FROM accounts WHERE region = $1', [region]).then(
      (r) => ({ ok: true as const, rows: r.rowCount }),
      (e: Error) => ({ ok: false as const, message: e.message }),
    );
  const requestId = (m: string) => /approval request ([0-9a-f-]{36})/.exec(m)?.[1];

  const first = await del('r1');
  t.notOk(first.ok, 'refused until approved');
  const id = first.ok ? undefined : requestId(first.message);
  t.ok(id, 'the refusal names the request');
  t.equal(await count('r1'), '10', 'nothing ran');
  const request = (await api<Approval>(tg.adminUrl, TOK.carol, 'GET', `/api/v1/approvals/${id}`)).body;
  t.match(request.unit, { type: 'statement', text: 'DELETE FROM accounts WHERE region = $1', paramsHash: /^[0-9a-f]{64}$/ }, 'the request carries the hash of the bound values');
  t.equal((await approve(tg.adminUrl, TOK.carol, id!)).status, 200);

  const other = await del('r2');
  t.notOk(other.ok, 'the same text with other values is not covered');
  const otherId = other.ok ? undefined : requestId(other.message);
  t.ok(otherId && otherId !== id, 'it opens a request of its own');
  t.equal(await count('r2'), '10');

  t.same(await del('r1'), { ok: true, rows: 10 }, 'the approved values run, once');
  const again = await del('r1');
  t.notOk(again.ok, 'single use');
  t.equal((await api<Approval>(tg.adminUrl, TOK.carol, 'GET', `/api/v1/approvals/${id}`)).body.status, 'used');
  t.equal((await c.query<{ n: number }>('SELECT 1 AS n')).rows[0].n, 1, 'the session goes on');
});
