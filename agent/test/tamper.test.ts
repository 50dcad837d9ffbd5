/**
 * A local log rewritten or truncated after shipping: the agent stops with an alert (row in
 * the central store, metric, log line) and `audit verify -c … --central URL` names the first
 * bad seq. The central store refuses UPDATE / DELETE / TRUNCATE.
 */
import t from 'tap';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { startAgent } from '../src/index.js';
import { append, centralSeqs, load, memLogger, openLog, pgDatabase, query, run, tempDir, waitFor, writeConfig } from './helpers.js';

type Test = Parameters<Parameters<typeof t.test>[0]>[0];

async function shipped(t: Test, n: number) {
  const dir = tempDir(t);
  const dataDir = join(dir, 'var');
  const url = await pgDatabase(t);
  const log = await openLog(t, dataDir);
  await append(log, n);
  await log.close();
  const cfgPath = writeConfig(dir, {
    data_dir: './var',
    gateway_id: 'gw-tamper',
    agent: { batch_size: 50, poll_interval: '20ms', metrics_listen: '127.0.0.1:0', sinks: [{ type: 'postgres', url }] },
  });
  const a = await startAgent(load(cfgPath), { logger: memLogger(), progress: false });
  t.ok(await waitFor(async () => (await centralSeqs(url, 'gw-tamper')).count === n), 'shipped');
  await a.stop();
  return { dir, dataDir, url, cfgPath };
}

t.test('a body edited after shipping: the agent halts with an alert; verify --central names the seq', async (t) => {
  const { dataDir, url, cfgPath } = await shipped(t, 200);
  const ok = await run(['audit', 'verify', '-c', cfgPath, '--central', url]);
  t.equal(ok.code, 0, ok.output);

  const db = new Database(join(dataDir, 'audit.db'));
  t.equal(db.prepare("UPDATE events SET body = replace(body, 'SELECT 1', 'SELECT 2') WHERE seq = 57").run().changes, 1, 'event 57 edited');
  db.close();

  const mem = memLogger();
  const a = await startAgent(load(cfgPath), { logger: mem, progress: false });
  t.ok(a.halted(), 'halted at start');
  t.equal(a.halted()?.seq, 57);
  t.ok(
    mem.lines.some((l) => l.level === 'error' && /HALTED/.test(l.msg)),
    'error line logged',
  );
  const metrics = await (await fetch(`http://${a.metricsAddress}/metrics`)).text();
  t.match(metrics, /gatehouse_agent_verification_failures_total\{gateway_id="gw-tamper"\} 1/);
  t.match(metrics, /gatehouse_agent_halted\{gateway_id="gw-tamper"\} 1/);
  t.ok(await waitFor(async () => (await query(url, 'SELECT 1 FROM gatehouse.alerts WHERE gateway_id = $1 AND seq = 57', ['gw-tamper'])).length === 1), 'alert row shipped');
  await a.stop();

  const bad = await run(['audit', 'verify', '-c', cfgPath, '--central', url]);
  t.equal(bad.code, 1);
  t.match(bad.output, /FAILED local log of gw-tamper at seq 57/);
  // The central copy itself is intact.
  const central = await run(['audit', 'verify', '--central', url]);
  t.equal(central.code, 0, central.output);
});

t.test('the last rows deleted after shipping: detected while running, verify names size+1', async (t) => {
  const { dataDir, url, cfgPath } = await shipped(t, 120);
  const mem = memLogger();
  const a = await startAgent(load(cfgPath), { logger: mem, progress: false });
  t.equal(a.halted(), null, 'intact at start');
  const db = new Database(join(dataDir, 'audit.db'));
  db.prepare('DELETE FROM events WHERE seq > 100').run();
  db.prepare('DELETE FROM checkpoints WHERE size > 100').run();
  db.close();
  t.ok(await waitFor(() => a.halted() !== null, 10_000), 'the running agent halts');
  t.equal(a.halted()?.code, 'agent.rollback');
  t.equal(a.halted()?.seq, 101);
  await a.stop();
  const bad = await run(['audit', 'verify', '-c', cfgPath, '--central', url]);
  t.equal(bad.code, 1);
  t.match(bad.output, /at seq 101/);
});

t.test('the central store is append-only', async (t) => {
  const { url } = await shipped(t, 10);
  for (const sql of [
    'UPDATE gatehouse.events SET body = body',
    'DELETE FROM gatehouse.events',
    'TRUNCATE gatehouse.events',
    'DELETE FROM gatehouse.checkpoints',
    'UPDATE gatehouse.gateways SET verifier_key = $$x$$',
  ]) {
    await t.rejects(query(url, sql), /append-only/, sql);
  }
  t.equal((await centralSeqs(url, 'gw-tamper')).count, 10);
  const mig = await query<{ version: number }>(url, 'SELECT version FROM gatehouse.schema_migrations');
  t.same(mig, [{ version: 1 }]);
});

t.test('another log (another key) under a registered gateway_id is refused with an alert', async (t) => {
  const { dir, url } = await shipped(t, 30);
  const other = join(dir, 'other');
  const log = await openLog(t, other);
  await log.close();
  const cfgPath = writeConfig(dir, { data_dir: './other', gateway_id: 'gw-tamper', agent: { poll_interval: '20ms', sinks: [{ type: 'postgres', url }] } }, 'other.yaml');
  const a = await startAgent(load(cfgPath), { logger: memLogger(), progress: false });
  t.ok(await waitFor(() => a.halted() !== null, 10_000), 'halts');
  t.equal(a.halted()?.code, 'agent.conflict', 'another verifier key for a registered gateway_id is refused');
  await a.stop();
});

t.test('the documented grants suffice: an agent role with SELECT and INSERT only ships, and cannot change rows', async (t) => {
  const { dir, url } = await shipped(t, 10);
  const role = `gh_agent_role_${Math.random().toString(36).slice(2, 10)}`;
  const db = new URL(url).pathname.slice(1);
  await query(url, `CREATE ROLE ${role} LOGIN`);
  t.teardown(async () => {
    await query(url, `DROP OWNED BY ${role}`);
    await query(url, `DROP ROLE ${role}`);
  });
  await query(
    url,
    `GRANT USAGE ON SCHEMA gatehouse TO ${role}; GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA gatehouse TO ${role}; GRANT USAGE ON ALL SEQUENCES IN SCHEMA gatehouse TO ${role}`,
  );
  const roleUrl = `postgres://${role}@127.0.0.1:5432/${db}`;
  const log = await openLog(t, join(dir, 'var2'));
  await append(log, 25);
  await log.close();
  const cfgPath = writeConfig(dir, { data_dir: './var2', gateway_id: 'gw-least', agent: { poll_interval: '20ms', sinks: [{ type: 'postgres', url: roleUrl }] } }, 'least.yaml');
  const a = await startAgent(load(cfgPath), { logger: memLogger(), progress: false });
  t.ok(await waitFor(async () => (await centralSeqs(url, 'gw-least')).count === 25), 'shipped with the agent role');
  await a.stop();
  await t.rejects(query(roleUrl, 'UPDATE gatehouse.events SET body = body'), /permission denied/);
});

t.test('a re-sent event with another hash is a conflict, not a duplicate', async (t) => {
  const url = await pgDatabase(t);
  const { PostgresSink } = await import('../src/sinks/postgres.js');
  const { SinkConflict } = await import('../src/sinks/sink.js');
  const s = new PostgresSink('pg', url);
  await s.open();
  t.teardown(() => s.close());
  const batch = (hash: string) => ({
    gatewayId: 'gw-x',
    verifierKey: 'k',
    events: [1, 2, 3].map((seq) => ({ seq, hash: seq === 2 ? hash : 'aa'.repeat(32), body: `{"seq":${seq}}` })),
    checkpoints: [],
  });
  await s.write(batch('bb'.repeat(32)));
  await s.write(batch('bb'.repeat(32)));
  t.equal((await centralSeqs(url, 'gw-x')).count, 3, 'the same batch twice: stored once');
  const e = await s.write(batch('cc'.repeat(32))).catch((x: unknown) => x);
  t.ok(e instanceof SinkConflict, 'another hash at seq 2');
  t.equal((e as InstanceType<typeof SinkConflict>).seq, 2);
});

t.test('an early event edited while the agent runs: the periodic re-verification (reverify_interval) halts it', async (t) => {
  const { dir, dataDir, url } = await shipped(t, 100);
  const cfgPath = writeConfig(
    dir,
    { data_dir: './var', gateway_id: 'gw-tamper', agent: { poll_interval: '20ms', reverify_interval: '200ms', sinks: [{ type: 'postgres', url }] } },
    'reverify.yaml',
  );
  const a = await startAgent(load(cfgPath), { logger: memLogger(), progress: false });
  t.equal(a.halted(), null, 'intact at start');
  const db = new Database(join(dataDir, 'audit.db'));
  t.equal(db.prepare("UPDATE events SET body = replace(body, 'SELECT 1', 'SELECT 2') WHERE seq = 10").run().changes, 1);
  db.close();
  t.ok(await waitFor(() => a.halted() !== null, 10_000), 'halted by the periodic pass');
  t.equal(a.halted()?.seq, 10);
  t.equal(a.metrics.verificationFailures, 1);
  await a.stop();
});
