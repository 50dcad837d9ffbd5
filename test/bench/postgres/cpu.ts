/**
 * CPU per statement at a fixed offered rate, the honest figure on a shared 2-core machine:
 * pgbench `-S -M prepared`, 8 clients, `-R` rate, against a bare Node relay (net + pipe),
 * pgbouncer (session mode) and Gatehouse (its own process; `passthrough`: no rules, no
 * masking, batched audit; `full`: rules, masking for the caller, batched or strict), in one
 * run. CPU is utime + stime of each proxy process, all threads, from /proc/PID/stat, divided
 * by the statements served. (`make bench` — test/bench/run.ts — measures the same and more;
 * this one also has full mode with batched audit.)
 *
 * Run after `npx tsc -b test`: node test/dist/bench/postgres/cpu.js
 * Env: CPU_RATE (default 2500; 0: closed loop, as fast as it goes — throughput at
 * saturation), CPU_SECONDS (default 10), CPU_CLIENTS (default 8), CPU_TARGETS (default
 * relay,pgbouncer,passthrough,full,full-strict), CPU_MODE (pgbench -M, prepared).
 * A Gatehouse target with a `-wN` suffix (`passthrough-w2`, `full-strict-w4`) runs with
 * `workers: N` (connection workers; its CPU is the primary's and every worker's).
 * BENCH_PIN_LOADGEN=CPUS pins pgbench with taskset (test/bench/lib/proc.ts).
 */
import { TOKENS } from '../../lib/gateway.js';
import { createTestDb } from '../../e2e/postgres/pg-env.js';
import { startGatehouse } from '../lib/gatehouse.js';
import { pgbench, type PgEndpoint } from '../lib/pgbench.js';
import { startPgbouncer } from '../lib/pgbouncer.js';
import { cpuDelta, cpuOfTree } from '../lib/proc.js';
import { startRelay } from '../lib/relay.js';
import { round } from '../lib/stats.js';
import { pgConnectorYaml, pgInit } from './suite.js';

const RATE = Number(process.env.CPU_RATE ?? 2500);
const SECONDS = Number(process.env.CPU_SECONDS ?? 10);
const CLIENTS = Number(process.env.CPU_CLIENTS ?? 8);
const MODE = (process.env.CPU_MODE ?? 'prepared') as 'simple' | 'extended' | 'prepared';
const TARGETS = (process.env.CPU_TARGETS ?? 'relay,pgbouncer,passthrough,full,full-strict').split(',');

interface Row {
  target: string;
  tps: number;
  statements: number;
  cpuUsPerStatement: number;
  userUs: number;
  systemUs: number;
  latencyP50Ms: number;
}

/**
 * The `audit:` value of a Gatehouse target, and `workers: N` for a `-wN` target (the bench
 * harness writes top-level keys it knows; this one rides on the line after `audit:`).
 */
function auditAndWorkers(name: string): string {
  const workers = /-w(\d+)$/.exec(name)?.[1];
  const base = name.replace(/-w\d+$/, '');
  const audit = base.endsWith('strict') ? '{ durability: strict }' : '{ durability: batched, window_ms: 5 }';
  return workers ? `${audit}\nworkers: ${workers}` : audit;
}

async function main() {
  const db = await createTestDb('cpu');
  await pgInit(db, 1);
  const direct: PgEndpoint = { host: '127.0.0.1', port: 5432, user: db.role, password: db.password, database: db.database };
  const rows: Row[] = [];
  try {
    for (const name of TARGETS) {
      const t =
        name === 'relay'
          ? await startRelay(5432).then((r) => ({ ...r, endpoint: { ...direct, port: r.port } }))
          : name === 'pgbouncer'
            ? await startPgbouncer(db).then((b) => ({ ...b, endpoint: { ...direct, port: b.port, password: '' } }))
            : await startGatehouse({
                connectors: pgConnectorYaml(db, name.startsWith('full') ? 'full' : 'passthrough'),
                audit: auditAndWorkers(name),
                env: { PG_PASSWORD: db.password },
              }).then((g) => ({ pid: g.pid, stop: () => g.stop(), endpoint: { ...g.address('pg'), user: 'bench', password: TOKENS.billing, database: db.database } }));
      try {
        // Warm up (JIT, caches, connections), then measure.
        await pgbench(t.endpoint, { clients: CLIENTS, seconds: 1, mode: MODE });
        const before = cpuOfTree(t.pid);
        const r = await pgbench(t.endpoint, { clients: CLIENTS, seconds: SECONDS, ...(RATE > 0 ? { rate: RATE } : {}), mode: MODE });
        const used = cpuDelta(before, cpuOfTree(t.pid));
        const per = (us: number) => Math.round((us / r.units) * 10) / 10;
        rows.push({
          target: name,
          tps: r.rate,
          statements: r.units,
          cpuUsPerStatement: per(used.user + used.system),
          userUs: per(used.user),
          systemUs: per(used.system),
          latencyP50Ms: round(r.latency.p50),
        });
      } finally {
        await t.stop();
      }
    }
  } finally {
    await db.drop();
  }
  const relay = rows.find((r) => r.target === 'relay');
  const bouncer = rows.find((r) => r.target === 'pgbouncer');
  process.stdout.write(JSON.stringify({ rate: RATE, seconds: SECONDS, clients: CLIENTS, mode: MODE, rows }) + '\n');
  process.stdout.write(`\n| target | tps | CPU µs/statement (user + system) | × bare relay | × pgbouncer | latency p50 ms |\n|---|---:|---:|---:|---:|---:|\n`);
  for (const r of rows) {
    const x = (b: Row | undefined) => (b ? (r.cpuUsPerStatement / b.cpuUsPerStatement).toFixed(2) : '—');
    process.stdout.write(`| ${r.target} | ${r.tps.toFixed(0)} | ${r.cpuUsPerStatement} (${r.userUs} + ${r.systemUs}) | ${x(relay)} | ${x(bouncer)} | ${r.latencyP50Ms} |\n`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
