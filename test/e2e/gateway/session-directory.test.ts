/**
 * Two gateways of one deployment share a PostgreSQL database (`approvals.store: postgres`):
 * each records its sessions there, and the admin API of either lists both gateways' sessions
 * (`GET /api/v1/sessions?scope=deployment`) — a session opened through gateway A with the
 * real psql shows up, ended, in gateway B's answer.
 */
import t from 'tap';
import pg from 'pg';
import type { DirectoryRow } from '@gatehouse/gateway';
import { startTestGateway, TOKENS } from '../../lib/gateway.js';
import { connectorsYaml, dbUpstream, postgresConnector } from '../../lib/postgres.js';
import { createTestDb, psql } from '../postgres/pg-env.js';

const get = async (base: string, path: string, token: string = TOKENS.auditor) => {
  const r = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${token}` } });
  return { status: r.status, body: (await r.json()) as { sessions?: DirectoryRow[]; detail?: string } };
};

t.test('every gateway lists every gateway’s sessions from the shared store', async (t) => {
  const shared = await createTestDb('sessdir');
  const upstream = await createTestDb('sessup');
  t.teardown(async () => {
    await shared.drop();
    await upstream.drop();
  });
  const url = `postgres://postgres@127.0.0.1:5432/${shared.database}`;
  const gateway = (id: string) =>
    startTestGateway({
      yaml: `gateway_id: ${id}\napprovals: { store: postgres, postgres_url: "${url}" }\n${connectorsYaml([postgresConnector({ name: 'pg', upstream: dbUpstream(upstream, 'disable', { password: false }) })])}`,
    });
  const a = await gateway('gw-a');
  t.teardown(() => a.stop());
  const b = await gateway('gw-b');
  t.teardown(() => b.stop());

  const run = await psql(a.address('pg'), TOKENS.billing, ['-c', 'SELECT 1', '-c', 'SELECT 2'], { sslmode: 'disable' });
  t.equal(run.code, 0, run.stderr);

  // Written after the session, never waited for by it: poll (bounded).
  let rows: DirectoryRow[] = [];
  for (let i = 0; i < 100; i++) {
    rows = (await get(b.adminUrl, '/api/v1/sessions?scope=deployment')).body.sessions ?? [];
    if (rows.some((r) => r.ended !== null)) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  t.equal(rows.length, 1, 'one session in the deployment');
  t.match(rows[0], { gateway_id: 'gw-a', connector: 'pg', protocol: 'postgres', subject: 'svc:billing', issuer: 'static', peer: /^127\.0\.0\.1:\d+$/, ended: /^\d{4}-/, units: 2 });
  t.ok(Date.parse(rows[0].started) <= Date.parse(rows[0].ended!), 'started before it ended');

  // The local view of gateway B has no such session; its own audit log is its own.
  const local = (await get(b.adminUrl, '/api/v1/sessions')).body.sessions ?? [];
  t.equal(local.length, 0, 'gateway B served no session itself');
  const onA = (await get(a.adminUrl, '/api/v1/sessions')).body.sessions as unknown as Array<{ session: string }>;
  t.equal(onA[0]?.session, rows[0].id, 'the directory entry is the session of gateway A’s audit log');

  t.same((await get(b.adminUrl, '/api/v1/sessions?scope=deployment&gateway=gw-b')).body.sessions, [], 'filtered by gateway');
  t.equal((await get(b.adminUrl, '/api/v1/sessions?scope=deployment&subject=svc:billing')).body.sessions?.length, 1, 'filtered by subject');
  t.equal((await get(b.adminUrl, '/api/v1/sessions?scope=deployment', TOKENS.billing)).status, 403, 'auditors and admins only');

  const direct = new pg.Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: shared.database });
  await direct.connect();
  t.teardown(() => direct.end());
  t.equal((await direct.query<{ n: number }>('SELECT count(*)::int AS n FROM gatehouse_sessions')).rows[0].n, 1, 'one row in the shared table');
});

t.test('without a shared store, scope=deployment is a clear 400', async (t) => {
  const g = await startTestGateway({ yaml: 'connectors: []\n' });
  t.teardown(() => g.stop());
  const r = await get(g.adminUrl, '/api/v1/sessions?scope=deployment');
  t.equal(r.status, 400);
  t.match(r.body.detail, /approvals\.store: postgres/);
});
