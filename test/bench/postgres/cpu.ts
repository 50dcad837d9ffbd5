/**
 * CPU per statement at a fixed offered rate, the honest figure on a shared 2-core machine:
 * pgbench `-S -M prepared`, 8 clients, `-R` rate, against a bare Node relay (net + pipe),
 * pgbouncer (session mode) and Gatehouse (its own process; `passthrough`: no rules, no
 * masking, batched audit; `full`: rules, masking for the caller, batched or strict), in one
 * run. CPU is utime + stime of each proxy process, all threads, from /proc/PID/stat, divided
 * by the statements served.
 *
 * Run after `npx tsc -b test`: node test/dist/bench/postgres/cpu.js
 * Env: CPU_RATE (default 2500), CPU_SECONDS (default 10), CPU_CLIENTS (default 8),
 * CPU_TARGETS (default relay,pgbouncer,passthrough,full,full-strict), CPU_MODE (pgbench -M, prepared).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { TOKENS } from '../../lib/gateway.js';
import { createTestDb, type TestDb } from '../../e2e/postgres/pg-env.js';

const run = promisify(execFile);
const RATE = Number(process.env.CPU_RATE ?? 2500);
const SECONDS = Number(process.env.CPU_SECONDS ?? 10);
const CLIENTS = Number(process.env.CPU_CLIENTS ?? 8);
const MODE = process.env.CPU_MODE ?? 'prepared';
const TARGETS = (process.env.CPU_TARGETS ?? 'relay,pgbouncer,passthrough,full,full-strict').split(',');
const CLK_TCK = 100; // Linux USER_HZ
const REPO = resolve(new URL('../../../..', import.meta.url).pathname);

async function freePort(): Promise<number> {
  return new Promise((res) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

/** utime and stime of a process and all its threads, in microseconds. */
function cpuMicros(pid: number): { user: number; system: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: (Number(fields[11]) * 1e6) / CLK_TCK, system: (Number(fields[12]) * 1e6) / CLK_TCK };
}

async function waitPort(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const ok = await run('pg_isready', ['-h', '127.0.0.1', '-p', String(port)]).then(
      () => true,
      () => false,
    );
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nothing answers on ${port}`);
}

interface Started {
  port: number;
  pid: number;
  user: string;
  password: string;
  proc: ChildProcess;
  stop(): void;
}

function startRelay(port: number): Started {
  const code = `const net=require('net');net.createServer({noDelay:true},(c)=>{const u=net.connect(5432,'127.0.0.1');u.setNoDelay(true);c.pipe(u);u.pipe(c);c.on('error',()=>u.destroy());u.on('error',()=>c.destroy());}).listen(${port},'127.0.0.1');`;
  const proc = spawn(process.execPath, ['-e', code], { stdio: 'ignore' });
  return { port, pid: proc.pid as number, user: '', password: '', proc, stop: () => proc.kill() };
}

function startPgbouncer(db: TestDb, dir: string, port: number): Started {
  writeFileSync(join(dir, 'userlist.txt'), `"${db.role}" ""\n`);
  writeFileSync(
    join(dir, 'pgbouncer.ini'),
    `[databases]\n${db.database} = host=127.0.0.1 port=5432 dbname=${db.database} user=${db.role}\n` +
      `[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = ${port}\nauth_type = trust\nauth_file = ${dir}/userlist.txt\n` +
      `pool_mode = session\nmax_client_conn = 200\ndefault_pool_size = 40\nunix_socket_dir =\nlogfile = ${dir}/pgbouncer.log\n` +
      `pidfile = ${dir}/pgbouncer.pid\nignore_startup_parameters = extra_float_digits\n`,
  );
  const ids =
    readFileSync('/etc/passwd', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('postgres:'))
      ?.split(':') ?? [];
  for (const f of ['', 'userlist.txt', 'pgbouncer.ini']) chownSync(join(dir, f), Number(ids[2]), Number(ids[3]));
  // pgbouncer refuses to run as root; its own pid comes from its pidfile once it listens.
  const proc = spawn('runuser', ['-u', 'postgres', '--', 'pgbouncer', join(dir, 'pgbouncer.ini')], { stdio: 'ignore' });
  const started: Started = { port, pid: 0, user: db.role, password: '', proc, stop: () => process.kill(started.pid, 'SIGTERM') };
  return started;
}

function startGatehouse(db: TestDb, dir: string, port: number, mode: 'passthrough' | 'full', durability: string): Started {
  const data = join(dir, `data-${mode}-${durability}`);
  const rules =
    mode === 'full'
      ? `    rules:\n      - { name: no-ddl, match: { statement: [drop, truncate, alter] }, action: deny }\n      - { name: bulk-write, match: { statement: [delete, update], where: absent }, action: review }\n    masking:\n      - { columns: [card_number, filler], with: last4 }\n      - { detectors: [credit_card, email], with: redact }\n`
      : '';
  const cfg = join(dir, `gatehouse-${mode}-${durability}.yaml`);
  writeFileSync(
    cfg,
    `data_dir: ${data}\nadmin: { listen: 127.0.0.1:0 }\nlog: { level: warn }\naudit: { durability: ${durability}${durability === 'batched' ? ', window_ms: 5' : ''} }\n` +
      `identity:\n  static_tokens:\n    - { token: "${TOKENS.billing}", subject: "svc:billing", groups: [payments] }\n` +
      `connectors:\n  - name: pg\n    type: postgres\n    listen: 127.0.0.1:${port}\n` +
      `    upstream: { address: 127.0.0.1:5432, database: ${db.database}, user: ${db.role}, sslmode: disable }\n    allow: [ { groups: [payments] } ]\n${rules}`,
  );
  const proc = spawn(process.execPath, [join(REPO, 'gateway/bin/gatehouse.js'), 'start', '-c', cfg], { stdio: ['ignore', 'ignore', 'inherit'] });
  return { port, pid: proc.pid as number, user: 'bench', password: TOKENS.billing, proc, stop: () => proc.kill('SIGTERM') };
}

async function pgbench(db: TestDb, t: Started): Promise<{ tps: number; statements: number; p50: number; p99: number }> {
  const { stdout } = await run(
    'pgbench',
    [
      '-n',
      '-S',
      '-M',
      MODE,
      '-c',
      String(CLIENTS),
      '-j',
      '2',
      '-R',
      String(RATE),
      '-T',
      String(SECONDS),
      '-r',
      '-h',
      '127.0.0.1',
      '-p',
      String(t.port),
      '-U',
      t.user || db.role,
      db.database,
    ],
    { env: { ...process.env, PGPASSWORD: t.password || db.password, PGSSLMODE: 'disable' }, maxBuffer: 64 << 20, timeout: (SECONDS + 60) * 1000 },
  );
  const statements = Number(/number of transactions actually processed: (\d+)/.exec(stdout)?.[1] ?? 0);
  const tps = Number(/tps = ([\d.]+)/.exec(stdout)?.[1] ?? NaN);
  const lat = Number(/latency average = ([\d.]+) ms/.exec(stdout)?.[1] ?? NaN);
  return { tps, statements, p50: lat, p99: NaN };
}

async function main() {
  const db = await createTestDb('cpu');
  const dir = mkdtempSync(join(tmpdir(), 'gh-cpu-'));
  await run('pgbench', ['-i', '-q', '-s', '1', '-h', '127.0.0.1', '-p', '5432', '-U', db.role, db.database], { env: { ...process.env, PGPASSWORD: db.password } });
  const rows: { target: string; tps: number; statements: number; cpuUsPerStatement: number; userUs: number; systemUs: number; latencyAvgMs: number }[] = [];
  try {
    for (const name of TARGETS) {
      const port = await freePort();
      const t =
        name === 'relay'
          ? startRelay(port)
          : name === 'pgbouncer'
            ? startPgbouncer(db, dir, port)
            : startGatehouse(db, dir, port, name.startsWith('full') ? 'full' : 'passthrough', name.endsWith('strict') ? 'strict' : 'batched');
      try {
        await waitPort(port);
        if (name === 'pgbouncer') t.pid = Number(readFileSync(join(dir, 'pgbouncer.pid'), 'utf8').trim());
        // Warm up (JIT, caches, connections), then measure.
        await run('psql', ['-h', '127.0.0.1', '-p', String(port), '-U', t.user || db.role, '-c', 'select 1', db.database], {
          env: { ...process.env, PGPASSWORD: t.password || db.password, PGSSLMODE: 'disable' },
        });
        const before = cpuMicros(t.pid);
        const r = await pgbench(db, t);
        const after = cpuMicros(t.pid);
        const per = (us: number) => Math.round((us / r.statements) * 10) / 10;
        const user = after.user - before.user;
        const system = after.system - before.system;
        rows.push({ target: name, tps: r.tps, statements: r.statements, cpuUsPerStatement: per(user + system), userUs: per(user), systemUs: per(system), latencyAvgMs: r.p50 });
      } finally {
        t.stop();
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  } finally {
    await db.drop();
    rmSync(dir, { recursive: true, force: true });
  }
  const relay = rows.find((r) => r.target === 'relay');
  const bouncer = rows.find((r) => r.target === 'pgbouncer');
  process.stdout.write(JSON.stringify({ rate: RATE, seconds: SECONDS, clients: CLIENTS, mode: MODE, rows }) + '\n');
  process.stdout.write(`\n| target | tps | CPU µs/statement (user + system) | × bare relay | × pgbouncer | latency avg ms |\n|---|---:|---:|---:|---:|---:|\n`);
  for (const r of rows) {
    const x = (b: typeof relay) => (b ? (r.cpuUsPerStatement / b.cpuUsPerStatement).toFixed(2) : '—');
    process.stdout.write(`| ${r.target} | ${r.tps.toFixed(0)} | ${r.cpuUsPerStatement} (${r.userUs} + ${r.systemUs}) | ${x(relay)} | ${x(bouncer)} | ${r.latencyAvgMs} |\n`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
