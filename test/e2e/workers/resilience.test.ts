/**
 * Connection workers when something goes wrong: a worker killed outright is replaced and the
 * gateway goes on serving into the same chain; a primary that stops answering (SIGSTOP)
 * makes a worker refuse — its strict statement fails after the stall bound instead of
 * waiting forever — and the worker stays refusing after the primary resumes.
 */
import t from 'tap';
import type pg from 'pg';
import { verifyLog } from '@gatehouse/audit';
import { TOKENS } from '../../lib/gateway.js';
import { createTestDb, gatewayClient, type TestDb } from '../postgres/pg-env.js';
import { alive, startCluster } from './cluster.js';

const yaml = (db: TestDb) => `workers: 2
log: { level: error }
audit: { durability: strict }
identity:
  static_tokens:
    - { token: "${TOKENS.billing}", subject: "svc:billing", groups: [payments] }
connectors:
  - name: pg
    type: postgres
    listen: 127.0.0.1:0
    upstream: { address: 127.0.0.1:5432, database: ${db.database}, user: ${db.role}, password: "\${env:PG_PASSWORD}", sslmode: disable }
    allow: [ { groups: [payments] } ]
`;

interface Health {
  workers: { index: number; pid: number; status: string }[];
}

const health = async (url: string) => (await (await fetch(`${url}/healthz`)).json()) as Health;

t.test('a worker killed with SIGKILL is replaced; the listener keeps serving; the chain verifies', async (t) => {
  const db = await createTestDb('workers_kill');
  t.teardown(() => db.drop());
  const gw = await startCluster(yaml(db), { env: { PG_PASSWORD: db.password } });
  t.teardown(async () => {
    await gw.stop();
    gw.remove();
  });
  const victim = gw.workers.get(1)!;
  process.kill(victim, 'SIGKILL');
  // Meanwhile the other worker takes every connection.
  for (let i = 0; i < 3; i++) {
    const c = await gatewayClient(gw.address('pg'), TOKENS.billing);
    t.same((await c.query('SELECT 1 AS one')).rows, [{ one: 1 }], `connection ${i + 1} served while worker 1 is replaced`);
    await c.end();
  }
  let replaced: Health['workers'][number] | undefined;
  for (let i = 0; i < 100 && !replaced; i++) {
    replaced = (await health(gw.adminUrl)).workers.find((w) => w.index === 1 && w.pid !== victim && w.status === 'ok');
    if (!replaced) await new Promise((r) => setTimeout(r, 100));
  }
  t.ok(replaced, `worker 1 runs again as pid ${replaced?.pid}`);
  t.notOk(alive(victim), 'the killed process is gone');
  const owners = new Set<number>();
  for (let i = 0; i < 4; i++) {
    const c = await gatewayClient(gw.address('pg'), TOKENS.billing);
    owners.add((c as unknown as { processID: number }).processID >>> 23);
    await c.query('SELECT 2');
    await c.end();
  }
  t.same([...owners].sort(), [0, 1], 'connections reach both workers again');
  t.equal(await gw.stop(), 0);
  t.ok(verifyLog(gw.dataDir).ok, 'the one chain verifies');
});

t.test('a stalled primary: a strict statement is refused after the bound, and the worker stays refusing', async (t) => {
  const db = await createTestDb('workers_stall');
  t.teardown(() => db.drop());
  const gw = await startCluster(yaml(db), { env: { PG_PASSWORD: db.password } });
  t.teardown(async () => {
    if (alive(gw.proc.pid!)) process.kill(gw.proc.pid!, 'SIGCONT');
    await gw.stop();
    gw.remove();
  });
  const c: pg.Client = await gatewayClient(gw.address('pg'), TOKENS.billing);
  c.on('error', () => {});
  t.teardown(() => c.end().catch(() => {}));
  t.same((await c.query('SELECT 1 AS one')).rows, [{ one: 1 }]);
  process.kill(gw.proc.pid!, 'SIGSTOP');
  const started = Date.now();
  const stalled = await c.query('SELECT 2').then(
    () => 'answered',
    (e: Error) => e.message,
  );
  const waited = Date.now() - started;
  process.kill(gw.proc.pid!, 'SIGCONT');
  t.match(stalled, /audit/, `refused: ${stalled}`);
  t.ok(waited >= 14_000 && waited < 40_000, `after the stall bound (${waited} ms), not forever`);
  const after = await c.query('SELECT 3').then(
    () => 'answered',
    (e: Error) => e.message,
  );
  t.match(after, /audit/, 'the worker keeps refusing after the primary resumes (fail closed for good)');
  const h = await health(gw.adminUrl);
  t.ok(
    h.workers.some((w) => w.status === 'failing'),
    '/healthz names the failing worker',
  );
});
