/**
 * PostgreSQL connector benchmark: pgbench `-S` and a `SELECT 1` script, 8 clients, in each
 * query mode, against the server directly, through Gatehouse (strict and batched audit,
 * a policy rule and masking rules on) and through pgbouncer (session mode), in one run.
 * Prints a JSON summary and a table: TPS, ratio to direct, p50/p99 latency from pgbench's
 * per-transaction logs.
 *
 * Run after `npx tsc -b test`: node test/dist/bench/postgres/bench.js
 * Env: BENCH_SECONDS (default 10), BENCH_CLIENTS (default 8), BENCH_MODES (simple,extended,prepared).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startTestGateway, TOKENS, type TestGateway } from '../../lib/gateway.js';
import { createTestDb, type TestDb } from '../../e2e/postgres/pg-env.js';

const run = promisify(execFile);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 8);
const MODES = (process.env.BENCH_MODES ?? 'simple,extended,prepared').split(',');

interface Target {
  name: string;
  host: string;
  port: number;
  user: string;
  db: string;
  password: string;
}

interface Row {
  script: string;
  mode: string;
  target: string;
  tps: number;
  ratio: number;
  p50ms: number;
  p99ms: number;
  p99AddedMs: number;
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function startPgbouncer(db: TestDb, dir: string): Promise<{ port: number; proc: ChildProcess }> {
  const port = await freePort();
  writeFileSync(join(dir, 'userlist.txt'), `"${db.role}" ""\n`);
  writeFileSync(
    join(dir, 'pgbouncer.ini'),
    `[databases]\n${db.database} = host=127.0.0.1 port=5432 dbname=${db.database} user=${db.role}\n` +
      `[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = ${port}\nauth_type = trust\nauth_file = ${dir}/userlist.txt\n` +
      `pool_mode = session\nmax_client_conn = 200\ndefault_pool_size = 40\nunix_socket_dir =\nlogfile = ${dir}/pgbouncer.log\n` +
      `pidfile = ${dir}/pgbouncer.pid\nignore_startup_parameters = extra_float_digits\n`,
  );
  for (const f of ['', 'userlist.txt', 'pgbouncer.ini']) chownSync(join(dir, f), uid('postgres'), gid('postgres'));
  // pgbouncer refuses to run as root.
  const proc = spawn('runuser', ['-u', 'postgres', '--', 'pgbouncer', join(dir, 'pgbouncer.ini')], { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    const ok = await run('pg_isready', ['-h', '127.0.0.1', '-p', String(port)]).then(
      () => true,
      () => false,
    );
    if (ok) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return { port, proc };
}

function uid(name: string): number {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(name + ':'));
  return Number(line?.split(':')[2]);
}
function gid(name: string): number {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(name + ':'));
  return Number(line?.split(':')[3]);
}

async function pgbench(t: Target, args: string[], logDir: string, tag: string): Promise<{ tps: number; p50: number; p99: number }> {
  const prefix = join(logDir, tag);
  const { stdout } = await run(
    'pgbench',
    ['-n', '-c', String(CLIENTS), '-j', '2', '-T', String(SECONDS), '-l', `--log-prefix=${prefix}`, '-h', t.host, '-p', String(t.port), '-U', t.user, ...args, t.db],
    { env: { ...process.env, PGPASSWORD: t.password, PGSSLMODE: 'disable' }, maxBuffer: 64 << 20, timeout: (SECONDS + 60) * 1000 },
  );
  const tps = Number(/tps = ([\d.]+)/.exec(stdout)?.[1] ?? NaN);
  const lat: number[] = [];
  for (const f of readdirSync(logDir).filter((f) => f.startsWith(tag + '.'))) {
    for (const line of readFileSync(join(logDir, f), 'utf8').split('\n')) {
      const us = Number(line.split(' ')[2]);
      if (Number.isFinite(us) && line) lat.push(us);
    }
    rmSync(join(logDir, f));
  }
  lat.sort((a, b) => a - b);
  const pct = (p: number) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(lat.length * p))] / 1000 : NaN);
  return { tps, p50: pct(0.5), p99: pct(0.99) };
}

async function gateway(db: TestDb, durability: string): Promise<TestGateway> {
  return startTestGateway({
    env: { PG_PASSWORD: db.password },
    yaml: `
audit: { durability: ${durability}${durability === 'batched' ? ', window_ms: 5' : ''} }
connectors:
  - name: pg
    type: postgres
    listen: 127.0.0.1:0
    upstream: { address: 127.0.0.1:5432, database: ${db.database}, user: ${db.role}, password: "\${env:PG_PASSWORD}", sslmode: disable }
    allow: [ { groups: [payments] } ]
    rules:
      - { name: no-ddl, match: { statement: [drop, truncate] }, action: deny }
    masking:
      - { columns: [card_number], with: last4 }
      - { detectors: [email, credit_card], with: redact }
`,
  });
}

async function main(): Promise<void> {
  const db = await createTestDb('bench');
  const dir = mkdtempSync(join(tmpdir(), 'gh-pgbench-'));
  let bouncer: ChildProcess | null = null;
  const gws: TestGateway[] = [];
  try {
    await run('pgbench', ['-i', '-q', '-s', '10', '-h', '127.0.0.1', '-p', '5432', '-U', db.role, db.database], { env: { ...process.env, PGPASSWORD: db.password } });
    writeFileSync(join(dir, 'select1.sql'), 'SELECT 1;\n');
    const pb = await startPgbouncer(db, dir);
    bouncer = pb.proc;
    const strict = await gateway(db, 'strict');
    const batched = await gateway(db, 'batched');
    gws.push(strict, batched);
    const gwTarget = (name: string, g: TestGateway): Target => ({ name, ...g.address('pg'), user: 'bench', db: 'any', password: TOKENS.billing });
    const targets: Target[] = [
      { name: 'direct', host: '127.0.0.1', port: 5432, user: db.role, db: db.database, password: db.password },
      gwTarget('gatehouse-strict', strict),
      gwTarget('gatehouse-batched', batched),
      { name: 'pgbouncer', host: '127.0.0.1', port: pb.port, user: db.role, db: db.database, password: '' },
    ];
    const scripts: Record<string, string[]> = { 'pgbench -S': ['-S'], 'SELECT 1': ['-f', join(dir, 'select1.sql')] };
    const rows: Row[] = [];
    for (const [script, args] of Object.entries(scripts)) {
      for (const mode of MODES) {
        let directRes: { tps: number; p99: number } | null = null;
        for (const t of targets) {
          const r = await pgbench(t, [...args, '-M', mode], dir, `${t.name}-${mode}-${script.replace(/\W+/g, '')}`);
          if (t.name === 'direct') directRes = r;
          const row: Row = {
            script,
            mode,
            target: t.name,
            tps: Math.round(r.tps),
            ratio: directRes ? +(r.tps / directRes.tps).toFixed(3) : 1,
            p50ms: +r.p50.toFixed(3),
            p99ms: +r.p99.toFixed(3),
            p99AddedMs: directRes ? +(r.p99 - directRes.p99).toFixed(3) : 0,
          };
          rows.push(row);
          process.stderr.write(`${JSON.stringify(row)}\n`);
        }
      }
    }
    console.log(JSON.stringify({ bench: 'postgres', seconds: SECONDS, clients: CLIENTS, rows }));
    console.table(rows);
  } finally {
    for (const g of gws) await g.stop();
    try {
      process.kill(Number(readFileSync(join(dir, 'pgbouncer.pid'), 'utf8').trim()), 'SIGTERM');
    } catch {
      bouncer?.kill('SIGTERM');
    }
    await db.drop().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
