/**
 * `workers: 2`: two connection worker processes behind the listen socket, one audit log in
 * the primary. Real parts only: the gateway as its own process (`gatehouse start`), the
 * local PostgreSQL, the `pg` driver and `psql`, `gatehouse audit verify`.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import pg from 'pg';
import { readEvents, verifyLog } from '@gatehouse/audit';
import { TOKENS } from '../../lib/gateway.js';
import { createTestDb, direct, gatewayClient, runClient, type TestDb } from '../postgres/pg-env.js';
import { alive, BIN, series, startCluster } from './cluster.js';

const IDENTITY = `identity:
  static_tokens:
    - { token: "${TOKENS.billing}", subject: "svc:billing", groups: [payments] }
    - { token: "${TOKENS.auditor}", subject: "alice", groups: [security] }
  roles:
    auditor: { groups: [security] }
`;

function yaml(db: TestDb, audit: string): string {
  return `workers: 2
log: { level: warn }
audit: ${audit}
${IDENTITY}connectors:
  - name: pg
    type: postgres
    listen: 127.0.0.1:0
    upstream: { address: 127.0.0.1:5432, database: ${db.database}, user: ${db.role}, password: "\${env:PG_PASSWORD}", sslmode: disable }
    allow: [ { groups: [payments] } ]
`;
}

const ppid = (pid: number) => Number(/^PPid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
const localPort = (c: pg.Client) => (c as unknown as { connection: { stream: { localPort: number } } }).connection.stream.localPort;
const ownerOf = (c: pg.Client) => (c as unknown as { processID: number }).processID >>> 23;

/** A CancelRequest as any client can send one (16 bytes), answered by the server closing the connection. */
async function rawCancel(addr: { host: string; port: number }, pid: number, secret: number): Promise<void> {
  const m = Buffer.alloc(16);
  m.writeInt32BE(16, 0);
  m.writeInt32BE(80877102, 4);
  m.writeInt32BE(pid, 8);
  m.writeInt32BE(secret, 12);
  const s = connect(addr.port, addr.host, () => s.write(m));
  s.on('error', () => {});
  s.resume();
  await Promise.race([once(s, 'close'), new Promise((r) => setTimeout(r, 5000))]);
  s.destroy();
}

interface Health {
  status: string;
  connectors: { pg: { connections: number } };
  workers: { index: number; pid: number; status: string; connections: { pg: number } }[];
}

t.test('workers: 2 — spread, one chain, cross-worker cancel, metrics and sessions of both, strict acks, graceful stop', async (t) => {
  const db = await createTestDb('workers');
  t.teardown(() => db.drop());
  const gw = await startCluster(yaml(db, '{ durability: strict }'), { env: { PG_PASSWORD: db.password } });
  t.teardown(async () => {
    await gw.stop();
    gw.remove();
  });
  const addr = gw.address('pg');
  const pids = [...gw.workers.values()];
  t.equal(gw.workers.size, 2, 'two workers');
  t.equal(new Set(pids).size, 2, 'two distinct processes');
  for (const p of pids) t.equal(ppid(p), gw.proc.pid, `worker ${p} is a child of the primary`);
  await direct(db, 'CREATE TABLE marks (worker int, n int, text text)');

  // Four connections held open: node:cluster hands them out round-robin.
  const clients: pg.Client[] = [];
  t.teardown(() => Promise.all(clients.map((c) => c.end().catch(() => {}))));
  for (let i = 0; i < 4; i++) clients.push(await gatewayClient(addr, TOKENS.billing));
  const health = (await (await fetch(`${gw.adminUrl}/healthz`)).json()) as Health;
  t.equal(health.status, 'ok');
  t.equal(health.connectors.pg.connections, 4, '/healthz sums the connections of both workers');
  t.same(health.workers.map((w) => w.pid).sort(), [...pids].sort(), '/healthz lists both workers by pid');
  for (const w of health.workers) t.ok(w.connections.pg >= 1, `worker ${w.index} (pid ${w.pid}) serves ${w.connections.pg} of the connections`);
  const owners = clients.map(ownerOf);
  t.same([...new Set(owners)].sort(), [0, 1], 'the backend keys callers see name both workers');

  // Statements on every connection; with strict durability each is in the store (read-only,
  // from outside the gateway) by the time its reply has arrived.
  const texts: string[] = [];
  let notYetDurable = 0;
  for (let round = 0; round < 10; round++) {
    for (const [i, c] of clients.entries()) {
      const text = `INSERT INTO marks VALUES (${owners[i]}, ${round}, 'c${i}-r${round}')`;
      await c.query(text);
      texts.push(text);
      const found = readEvents(gw.dataDir, { kind: 'unit', limit: 10_000 }).some((e) => e.unit?.text === text);
      if (!found) notYetDurable++;
    }
  }
  t.equal(notYetDurable, 0, 'strict: every statement was committed to the one log before its reply reached the caller');

  // Cancels: each on a new connection, which round-robin lands on alternating workers, so
  // of two cancels in a row for one session one is received by the other worker and must be
  // forwarded to the owner through the primary.
  const canceled: string[] = [];
  for (const victim of [clients[owners.indexOf(0)], clients[owners.indexOf(1)]]) {
    for (let k = 0; k < 2; k++) {
      const sleeping = victim.query('SELECT pg_sleep(20)').then(
        () => 'finished',
        (e: { code?: string }) => e.code ?? 'error',
      );
      for (let i = 0; i < 200; i++) {
        const active = await direct(db, `SELECT count(*)::int AS n FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(20)' AND state = 'active'`);
        if (active.rows[0].n > 0) break;
        await new Promise((r) => setTimeout(r, 25));
      }
      // pg's own cancel: a new client sends the CancelRequest with the key the victim got.
      const canceller = new pg.Client({ host: addr.host, port: addr.port });
      (canceller as unknown as { cancel(c: pg.Client, q: unknown): void }).cancel(victim, (victim as unknown as { activeQuery: unknown }).activeQuery);
      canceled.push(await sleeping);
    }
  }
  t.same(canceled, ['57014', '57014', '57014', '57014'], 'every cancel reached the right backend, whichever worker received it');

  // A hostile caller's cancels, each on a new connection: the victim's pid with a wrong secret
  // (twice, so each worker receives one: the foreign one is relayed and its owner must refuse
  // it), and the right secret under a worker index that does not exist. None may reach the
  // backend: the statement runs to its end.
  const victim = clients[0];
  const { processID, secretKey } = victim as unknown as { processID: number; secretKey: number };
  const sleeping = victim.query('SELECT pg_sleep(3)').then(
    () => 'finished',
    (e: { code?: string }) => e.code ?? 'error',
  );
  for (let i = 0; i < 200; i++) {
    const active = await direct(db, `SELECT count(*)::int AS n FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(3)' AND state = 'active'`);
    if (active.rows[0].n > 0) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  const forged: Array<[number, number]> = [
    [processID, secretKey ^ 1],
    [processID, secretKey ^ 1],
    [(processID & ~(0xff << 23)) | (200 << 23), secretKey],
  ];
  for (const [pid, secret] of forged) await rawCancel(addr, pid, secret);
  t.equal(await sleeping, 'finished', 'forged cancels (a wrong secret, relayed or not; a worker that does not exist) reached no backend');

  // psql's cancel (SIGINT, as at a terminal) on a session of whichever worker psql lands on.
  const psqlRun = spawn('psql', [`host=${addr.host} port=${addr.port} user=x dbname=d sslmode=disable`, '-Atc', 'SELECT pg_sleep(19)'], {
    env: { ...process.env, PGPASSWORD: TOKENS.billing },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let psqlErr = '';
  psqlRun.stderr.on('data', (d: Buffer) => (psqlErr += d.toString()));
  const psqlExit = once(psqlRun, 'exit');
  for (let i = 0; i < 400; i++) {
    const active = await direct(db, `SELECT count(*)::int AS n FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(19)' AND state = 'active'`);
    if (active.rows[0].n > 0) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  psqlRun.kill('SIGINT');
  await psqlExit;
  t.match(psqlErr, /canceling statement due to user request/, 'psql cancelled on SIGINT');

  // /metrics sums both workers: every statement above is counted once. (psql's session may
  // still be ending in its worker: wait for it to close.)
  let metrics = '';
  for (let i = 0; i < 40; i++) {
    metrics = await (await fetch(`${gw.adminUrl}/metrics`)).text();
    if (series(metrics, 'gatehouse_sessions_open', '{connector="pg"}') === 4) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const units = readEvents(gw.dataDir, { kind: 'unit', limit: 10_000 });
  t.equal(series(metrics, 'gatehouse_units_total', '{connector="pg",action="allow"}'), units.length, `/metrics counts the ${units.length} units of both workers`);
  t.equal(series(metrics, 'gatehouse_sessions_open', '{connector="pg"}'), 4, 'open sessions of both workers');
  t.equal(series(metrics, 'gatehouse_audit_failed'), 0);

  // The admin sessions API lists the sessions of both workers.
  const res = await fetch(`${gw.adminUrl}/api/v1/sessions?limit=100`, { headers: { authorization: `Bearer ${TOKENS.auditor}` } });
  const sessions = ((await res.json()) as { sessions: { meta?: { peer?: string } }[] }).sessions;
  for (const [i, c] of clients.entries()) {
    t.ok(
      sessions.some((s) => s.meta?.peer === `127.0.0.1:${localPort(c)}`),
      `session of connection ${i} (worker ${owners[i]}) is listed`,
    );
  }

  // Graceful stop: one session is still open (idle) at SIGTERM: the worker's drain ends it
  // when the drain time is up, and its session.end reaches the log before the log is flushed
  // and signed.
  const lingering = clients[0];
  lingering.on('error', () => {});
  const lingeringPort = localPort(lingering);
  await Promise.all(clients.splice(1).map((c) => c.end()));
  const code = await gw.stop();
  t.equal(code, 0, 'the primary exits 0 on SIGTERM');
  t.match(gw.output(), /^gatehouse: stopped$/m);
  for (const p of pids) t.notOk(alive(p), `worker ${p} is gone`);
  const verify = await runClient(process.execPath, [BIN, 'audit', 'verify', '-c', gw.config], {});
  t.equal(verify.code, 0, `gatehouse audit verify passes: ${verify.stdout.trim()}${verify.stderr.trim()}`);
  const report = verifyLog(gw.dataDir);
  const all = readEvents(gw.dataDir, { limit: 10_000 });
  t.equal(report.size, all.length);
  t.same(
    all.map((e) => e.seq),
    all.map((_, i) => i + 1),
    'one sequence without gaps',
  );
  const logged = new Set(all.filter((e) => e.kind === 'unit').map((e) => e.unit?.text));
  t.same(
    texts.filter((x) => !logged.has(x)),
    [],
    'every statement of both workers is in the one chain',
  );
  const checkpoint = await runClient(process.execPath, [BIN, 'audit', 'checkpoint', '-c', gw.config], {});
  t.equal(Number(checkpoint.stdout.split('\n')[1]), all.length, 'the last signed checkpoint covers every event (signed at stop)');
  const lingeringSession = all.find((e) => e.kind === 'session.start' && e.meta?.peer === `127.0.0.1:${lingeringPort}`)?.session;
  t.ok(
    all.some((e) => e.kind === 'session.end' && e.session === lingeringSession),
    'the session still open at SIGTERM was ended by the drain and recorded',
  );
  const starts = all.filter((e) => e.kind === 'session.start').map((e) => e.session);
  const ends = new Set(all.filter((e) => e.kind === 'session.end').map((e) => e.session));
  t.same(
    starts.filter((s) => !ends.has(s)),
    [],
    'every session has its session.end',
  );
  const rows = await direct<{ worker: number }>(db, 'SELECT DISTINCT worker FROM marks ORDER BY worker');
  t.same(
    rows.rows.map((r) => r.worker),
    [0, 1],
    'rows written through both workers',
  );
});

t.test('a failed audit log in the primary refuses work in every worker', async (t) => {
  const db = await createTestDb('workers_fail');
  t.teardown(() => db.drop());
  // 3 MiB: room to start and serve a while, then the audit WAL hits the file-size limit and
  // write(2) fails with EFBIG, what a full disk looks like to SQLite.
  const gw = await startCluster(yaml(db, '{ durability: strict }'), { env: { PG_PASSWORD: db.password }, shell: 'ulimit -f 3072 &&' });
  t.teardown(async () => {
    await gw.stop();
    gw.remove();
  });
  const addr = gw.address('pg');
  const clients: pg.Client[] = [];
  t.teardown(() => Promise.all(clients.map((c) => c.end().catch(() => {}))));
  for (let i = 0; i < 2; i++) {
    const c = await gatewayClient(addr, TOKENS.billing);
    c.on('error', () => {});
    clients.push(c);
  }
  t.same(clients.map(ownerOf).sort(), [0, 1], 'one connection in each worker');
  const pad = 'x'.repeat(3000);
  let served = 0;
  let refusal: string | null = null;
  const victim = clients[0];
  for (let i = 0; i < 5000 && refusal === null; i++) {
    try {
      await victim.query(`SELECT '${pad}' AS pad, ${i} AS i`);
      served++;
    } catch (e) {
      refusal = (e as Error).message;
    }
  }
  t.ok(served > 10, `served ${served} statements before the store filled up`);
  t.ok(refusal, `a statement was refused once the audit store could not write: ${refusal}`);
  // The other worker was told: its session refuses the next statement before it reaches the
  // database (not only when its event cannot be written afterwards).
  await direct(db, 'CREATE TABLE after_failure (n int)');
  await new Promise((r) => setTimeout(r, 200));
  const other = await clients[1].query('INSERT INTO after_failure VALUES (1)').then(
    () => 'executed',
    (e: Error) => e.message,
  );
  t.match(other, /audit/, 'the other worker refuses its session’s statement');
  t.equal((await direct(db, 'SELECT count(*)::int AS n FROM after_failure')).rows[0].n, 0, 'the refused statement never reached the database');
  for (let i = 0; i < 2; i++) {
    const fresh = await gatewayClient(addr, TOKENS.billing).then(
      (c) => c.end().then(() => 'connected'),
      (e: Error) => e.message,
    );
    t.match(fresh, /audit/, `a new connection is refused (${i + 1}, either worker)`);
  }
  const health = await fetch(`${gw.adminUrl}/healthz`);
  t.equal(health.status, 503, '/healthz says the gateway is failing');
  const body = (await health.json()) as { audit: { status: string }; workers: { status: string }[] };
  t.equal(body.audit.status, 'failing');
  t.same(
    body.workers.map((w) => w.status),
    ['failing', 'failing'],
    'both workers refuse',
  );
  t.match(await (await fetch(`${gw.adminUrl}/metrics`)).text(), /gatehouse_audit_failed 1/);
  t.equal(gw.proc.exitCode, null, 'the gateway keeps running (refusing)');
  await Promise.all(clients.splice(0).map((c) => c.end().catch(() => {})));
  await gw.stop();
  const report = verifyLog(gw.dataDir);
  t.ok(report.ok, `the committed prefix verifies (${report.size} events${report.reason ? `; ${report.reason}` : ''})`);
});

t.test('a combination workers cannot serve is refused at start, naming why', async (t) => {
  const db = await createTestDb('workers_refused');
  t.teardown(() => db.drop());
  const text = yaml(db, '{ durability: strict }').replace(
    '    allow: [ { groups: [payments] } ]\n',
    '    allow: [ { groups: [payments] } ]\n    rules: [ { name: r, match: { statement: [delete] }, action: review } ]\n    review: { reviewers: { groups: [dba] } }\n',
  );
  await t.rejects(startCluster(text, { env: { PG_PASSWORD: db.password } }), /workers: 2 cannot hold reviewed units with approvals\.store: sqlite/);
});
