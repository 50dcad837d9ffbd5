/**
 * MySQL connector benchmark: sysbench (a separate process, libmariadb) against the local
 * MariaDB directly and through an in-process gateway, side by side in one run. Reports
 * statements per second, p50 latency and the gateway's CPU per statement (process.cpuUsage: the load
 * generator runs in its own process, so this process's CPU is the gateway's).
 * Env: BENCH_SECONDS (default 5), BENCH_THREADS (default "1,4"), BENCH_DURABILITY (batched).
 */
import { startTestGateway, TOKENS } from '../../lib/gateway.js';
import { createTestDb } from '../../e2e/mysql/my-env.js';
import { sysbench as runSysbench, sysbenchPrepare, type MyEndpoint } from '../lib/sysbench.js';

interface Row {
  target: string;
  test: string;
  ps: string;
  threads: number;
  qps: number;
  latencyMs: number;
  gatewayCpuUsPerStmt: number | null;
}

async function sysbench(t: MyEndpoint, test: string, ps: 'auto' | 'disable', threads: number, seconds: number): Promise<{ qps: number; latencyMs: number; queries: number }> {
  const r = await runSysbench(t, { test, ps, threads, seconds });
  return { qps: r.rate, latencyMs: r.latency.p50, queries: r.units };
}

async function main() {
  const seconds = Number(process.env.BENCH_SECONDS ?? 5);
  const threads = (process.env.BENCH_THREADS ?? '1,4').split(',').map(Number);
  const db = await createTestDb('bench');
  const direct: MyEndpoint = { host: '127.0.0.1', port: 3306, user: db.user, password: db.password, database: db.database };
  await sysbenchPrepare(direct);
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
      for (const ps of ['auto', 'disable'] as const) {
        for (const n of threads) {
          const d = await sysbench(direct, test, ps, n, seconds);
          rows.push({ target: 'direct', test, ps, threads: n, qps: d.qps, latencyMs: d.latencyMs, gatewayCpuUsPerStmt: null });
          for (const name of ['plain', 'masked']) {
            const { host, port } = tg.address(name);
            const cpu0 = process.cpuUsage();
            const g = await sysbench({ host, port, user: 'app', password: TOKENS.billing, database: db.database }, test, ps, n, seconds);
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
  console.log(JSON.stringify({ bench: 'mysql', seconds, rows }));
  console.log('target              test               ps       thr       qps   p50 ms  gw CPU µs/stmt');
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
