/**
 * A large result through the PostgreSQL connector with masking on (#9 item 4): one
 * `SELECT` of N rows (generate_series; an id, an email the masking rule redacts, a hash, a
 * timestamp), direct vs through Gatehouse in its own process, whose peak RSS (VmHWM) is read
 * from /proc after the query.
 *
 * The client is the `pg` driver with a row-counting submittable: one simple-protocol query,
 * every DataRow counted and dropped as it arrives, so the client holds one row at a time and
 * the gateway has to stream one statement's whole result. (psql with FETCH_COUNT would turn
 * it into a cursor and FETCHes of FETCH_COUNT rows — a different, easier load for the
 * gateway; `psql -c 'COPY … TO STDOUT'` is the copy path, not a result set.)
 */
import { EventEmitter } from 'node:events';
import pg from 'pg';
import { TOKENS } from '../../lib/gateway.js';
import { postgresConnector, dbUpstream } from '../../lib/postgres.js';
import { createTestDb } from '../../e2e/postgres/pg-env.js';
import type { BenchConfig } from '../lib/config.js';
import { startGatehouse } from '../lib/gatehouse.js';
import { statusKiB } from '../lib/proc.js';
import { ratio, round } from '../lib/stats.js';

export interface LargeRun {
  target: 'direct' | 'gatehouse';
  rows: number;
  seconds: number;
  rowsPerSec: number;
  /** Rows whose email reached the client in clear (0 through the gateway: masking was on). */
  clearEmails: number;
  /** The client's (this process's) CPU over the query, as a share of the wall time: near 1 = client-bound. */
  clientCpuShare: number;
}

export interface LargeResult {
  rows: number;
  direct: LargeRun;
  gatehouse: LargeRun;
  ratio: number | null;
  /** Gateway resident set after start-up and a warm-up query, and its peak (VmHWM) after the large one, MiB. */
  gatewayRssBeforeMiB: number;
  gatewayPeakRssBeforeMiB: number;
  gatewayPeakRssMiB: number;
}

const sql = (n: number) => `SELECT i AS id, 'user' || i || '@example.com' AS email, md5(i::text) AS token, now() AS at FROM generate_series(1, ${n}) AS g(i)`;

/** pg's Submittable seam: the driver hands each protocol message to the active query. */
class CountRows extends EventEmitter {
  rows = 0;
  clearEmails = 0;
  private err: Error | null = null;
  constructor(
    private readonly text: string,
    private readonly done: (e: Error | null, q: CountRows) => void,
  ) {
    super();
  }
  submit(connection: { query(text: string): void }): void {
    connection.query(this.text);
  }
  handleRowDescription(): void {}
  handleDataRow(msg: { fields: (string | null)[] }): void {
    this.rows++;
    if (msg.fields[1]?.endsWith('@example.com')) this.clearEmails++;
  }
  handleCommandComplete(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleError(e: Error): void {
    // pg forgets the active query on an error: this is its last call.
    this.err = e;
    this.done(e, this);
  }
  handleReadyForQuery(): void {
    if (!this.err) this.done(null, this);
  }
}

async function countRows(c: pg.Client, text: string): Promise<CountRows> {
  return new Promise((resolve, reject) => {
    const q = new CountRows(text, (e, r) => (e ? reject(e) : resolve(r)));
    void c.query(q as unknown as pg.QueryConfig);
  });
}

async function timed(target: LargeRun['target'], cfg: pg.ClientConfig, n: number): Promise<LargeRun> {
  const c = new pg.Client(cfg);
  let lost: Error | null = null;
  // A dropped connection surfaces as an 'error' event: keep it for the report instead of crashing.
  c.on('error', (e) => (lost = e));
  await c.connect();
  try {
    await countRows(c, sql(1000));
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const q = await countRows(c, sql(n)).catch((e: Error) => {
      throw new Error(`${target}: ${e.message}${lost ? ` (${lost.message})` : ''}`);
    });
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    return {
      target,
      rows: q.rows,
      seconds: round(seconds),
      rowsPerSec: Math.round(q.rows / seconds),
      clearEmails: q.clearEmails,
      clientCpuShare: round((cpu.user + cpu.system) / 1e6 / seconds, 2),
    };
  } finally {
    await c.end();
  }
}

export async function largeResultSuite(cfg: BenchConfig, log: (s: string) => void): Promise<LargeResult> {
  const db = await createTestDb('large');
  const n = cfg.largeRows;
  try {
    log(`large: ${n} rows direct`);
    const direct = await timed('direct', { host: '127.0.0.1', port: 5432, user: db.role, password: db.password, database: db.database }, n);
    const gw = await startGatehouse({
      connectors: postgresConnector({
        upstream: dbUpstream(db, 'disable'),
        masking: ['{ columns: [email], with: redact }', '{ detectors: [credit_card], with: last4 }'],
      }),
      audit: '{ durability: batched, window_ms: 5 }',
      env: { PG_PASSWORD: db.password },
    });
    try {
      const { host, port } = gw.address('pg');
      const via = { host, port, user: 'bench', password: TOKENS.billing, database: 'any' };
      // Warm the gateway (JIT, a session) before its baseline memory is read.
      const warm = new pg.Client(via);
      await warm.connect();
      await countRows(warm, sql(10_000));
      await warm.end();
      const before = statusKiB(gw.pid, 'VmRSS');
      const peakBefore = statusKiB(gw.pid, 'VmHWM');
      log(`large: ${n} rows through the gateway`);
      const gatehouse = await timed('gatehouse', via, n);
      const peak = statusKiB(gw.pid, 'VmHWM');
      const res: LargeResult = {
        rows: n,
        direct,
        gatehouse,
        ratio: ratio(gatehouse.rowsPerSec, direct.rowsPerSec),
        gatewayRssBeforeMiB: round(before / 1024, 1),
        gatewayPeakRssBeforeMiB: round(peakBefore / 1024, 1),
        gatewayPeakRssMiB: round(peak / 1024, 1),
      };
      log(`  ${JSON.stringify(res)}`);
      return res;
    } finally {
      await gw.stop();
    }
  } finally {
    await db.drop().catch(() => {});
  }
}
