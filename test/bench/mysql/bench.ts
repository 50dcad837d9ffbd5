/**
 * MySQL connector benchmark: sysbench (a separate process, libmariadb) against the local
 * MariaDB directly and through an in-process gateway, side by side in one run. Reports
 * statements per second and the gateway's CPU per statement (process.cpuUsage: the load
 * generator runs in its own process, so this process's CPU is the gateway's).
 * Env: BENCH_SECONDS (default 5), BENCH_THREADS (default "1,4"), BENCH_DURABILITY (batched).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startTestGateway, TOKENS } from '../../lib/gateway.js';
import { createTestDb } from '../../e2e/mysql/my-env.js';

const run = promisify(execFile);

interface Row {
  target: string;
  test: string;
  ps: string;
  threads: number;
  qps: number;
  latencyMs: number;
  gatewayCpuUsPerStmt: number | null;
}

async function sysbench(test: string, args: string[]): Promise<{ qps: number; latencyMs: number; queries: number }> {
  const { stdout } = await run('sysbench', [test, '--tables=1', '--table-size=10000', ...args], { maxBuffer: 1 << 24, timeout: 600_000 });
  const qps = Number(/queries:\s+\d+\s+\(([\d.]+) per sec/.exec(stdout)?.[1] ?? 0);
  const queries = Number(/queries:\s+(\d+)/.exec(stdout)?.[1] ?? 0);
  const latencyMs = Number(/avg:\s+([\d.]+)/.exec(stdout)?.[1] ?? 0);
  return { qps, latencyMs, queries };
}

async function main() {
  const seconds = process.env.BENCH_SECONDS ?? '5';
  const threads = (process.env.BENCH_THREADS ?? '1,4').split(',').map(Number);
  const db = await createTestDb('bench');
  await sysbench('oltp_read_write', [
    '--mysql-host=127.0.0.1',
    '--mysql-port=3306',
    `--mysql-user=${db.user}`,
    `--mysql-password=${db.password}`,
    `--mysql-db=${db.database}`,
    'prepare',
  ]);
  const tg = await startTestGateway({
    env: { PW: db.password },
    yaml: `
audit: { durability: ${process.env.BENCH_DURABILITY ?? 'batched'} }
connectors:
  - name: plain
    type: mysql
    listen: 127.0.0.1:0
    upstream: { address: 127.0.0.1:3306, database: ${db.database}, user: ${db.user}, password: "\${env:PW}", tls: { mode: disable } }
    allow: [ { groups: [payments] } ]
    rules:
      - { name: no-ddl, match: { statement: [drop, truncate] }, action: deny }
  - name: masked
    type: mysql
    listen: 127.0.0.1:0
    upstream: { address: 127.0.0.1:3306, database: ${db.database}, user: ${db.user}, password: "\${env:PW}", tls: { mode: disable } }
    allow: [ { groups: [payments] } ]
    rules:
      - { name: no-ddl, match: { statement: [drop, truncate] }, action: deny }
    masking:
      - { columns: [pad], with: last4 }
      - { detectors: [credit_card], with: last4 }
`,
  });
  const rows: Row[] = [];
  try {
    for (const test of ['oltp_point_select', 'oltp_read_write']) {
      for (const ps of ['auto', 'disable']) {
        for (const n of threads) {
          const common = [`--threads=${n}`, `--time=${seconds}`, `--db-ps-mode=${ps}`, `--mysql-db=${db.database}`, 'run'];
          const d = await sysbench(test, ['--mysql-host=127.0.0.1', '--mysql-port=3306', `--mysql-user=${db.user}`, `--mysql-password=${db.password}`, ...common]);
          rows.push({ target: 'direct', test, ps, threads: n, qps: d.qps, latencyMs: d.latencyMs, gatewayCpuUsPerStmt: null });
          for (const name of ['plain', 'masked']) {
            const { host, port } = tg.address(name);
            const cpu0 = process.cpuUsage();
            const g = await sysbench(test, [`--mysql-host=${host}`, `--mysql-port=${port}`, '--mysql-user=app', `--mysql-password=${TOKENS.billing}`, ...common]);
            const cpu = process.cpuUsage(cpu0);
            rows.push({
              target: `gateway (${name})`,
              test,
              ps,
              threads: n,
              qps: g.qps,
              latencyMs: g.latencyMs,
              gatewayCpuUsPerStmt: g.queries ? Math.round((cpu.user + cpu.system) / g.queries) : null,
            });
          }
        }
      }
    }
  } finally {
    await tg.stop();
    await db.drop();
  }
  console.log(JSON.stringify({ bench: 'mysql', seconds: Number(seconds), rows }));
  console.log('target              test               ps       thr       qps   lat ms  gw CPU µs/stmt');
  for (const r of rows) {
    console.log(
      `${r.target.padEnd(19)} ${r.test.padEnd(18)} ${r.ps.padEnd(8)} ${String(r.threads).padStart(3)} ${r.qps.toFixed(0).padStart(9)} ${r.latencyMs.toFixed(2).padStart(8)} ${r.gatewayCpuUsPerStmt === null ? '' : String(r.gatewayCpuUsPerStmt).padStart(8)}`,
    );
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
