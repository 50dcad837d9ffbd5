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
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestGateway, TOKENS, type TestGateway } from '../../lib/gateway.js';
import { createTestDb, type TestDb } from '../../e2e/postgres/pg-env.js';
import { pgbench as runPgbench, type PgEndpoint } from '../lib/pgbench.js';
import { startPgbouncer } from '../lib/pgbouncer.js';
import type { ProxyProcess } from '../lib/relay.js';
import { pgInit } from './suite.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 8);
const MODES = (process.env.BENCH_MODES ?? 'simple,extended,prepared').split(',') as ('simple' | 'extended' | 'prepared')[];

interface Target extends PgEndpoint {
  name: string;
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

async function pgbench(t: Target, script: string[], mode: 'simple' | 'extended' | 'prepared'): Promise<{ tps: number; p50: number; p99: number }> {
  const r = await runPgbench(t, { clients: CLIENTS, seconds: SECONDS, mode, script });
  return { tps: r.rate, p50: r.latency.p50, p99: r.latency.p99 };
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
  let pb: ProxyProcess | null = null;
  const gws: TestGateway[] = [];
  try {
    await pgInit(db, 10);
    writeFileSync(join(dir, 'select1.sql'), 'SELECT 1;\n');
    pb = await startPgbouncer(db);
    const strict = await gateway(db, 'strict');
    const batched = await gateway(db, 'batched');
    gws.push(strict, batched);
    const gwTarget = (name: string, g: TestGateway): Target => ({ name, ...g.address('pg'), user: 'bench', database: 'any', password: TOKENS.billing });
    const targets: Target[] = [
      { name: 'direct', host: '127.0.0.1', port: 5432, user: db.role, database: db.database, password: db.password },
      gwTarget('gatehouse-strict', strict),
      gwTarget('gatehouse-batched', batched),
      { name: 'pgbouncer', host: '127.0.0.1', port: pb.port, user: db.role, database: db.database, password: '' },
    ];
    const scripts: Record<string, string[]> = { 'pgbench -S': ['-S'], 'SELECT 1': ['-f', join(dir, 'select1.sql')] };
    const rows: Row[] = [];
    for (const [script, args] of Object.entries(scripts)) {
      for (const mode of MODES) {
        let directRes: { tps: number; p99: number } | null = null;
        for (const t of targets) {
          const r = await pgbench(t, args, mode);
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
    await pb?.stop();
    await db.drop().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
