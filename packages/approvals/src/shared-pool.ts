/**
 * The deployment's shared PostgreSQL (`approvals.store: postgres`): a bounded pool (few
 * connections, short timeouts) whose tables are created at open, serialised with an advisory
 * lock because several gateways starting at once would race on the catalog. Used by the
 * approvals store and the gateway's session directory.
 */
import pg from 'pg';
import type { Logger } from '@gatehouse/core';

export interface SharedPoolOptions {
  /** Connections at most. */
  max: number;
  /** `CREATE … IF NOT EXISTS` statements. */
  schema: string;
  /** The advisory lock key of this schema (one per table set). */
  lock: number;
  /** What the pool serves, for log lines. */
  label: string;
}

export async function openSharedPool(url: string, logger: Logger, o: SharedPoolOptions): Promise<pg.Pool> {
  const pool = new pg.Pool({ connectionString: url, max: o.max, connectionTimeoutMillis: 5000, idleTimeoutMillis: 30_000, statement_timeout: 5000 });
  pool.on('error', (e) => logger.warn({ err: e.message }, `${o.label}: idle connection failed`));
  const c = await pool.connect();
  try {
    await c.query('SELECT pg_advisory_lock($1)', [o.lock]);
    await c.query(o.schema);
  } finally {
    await c.query('SELECT pg_advisory_unlock($1)', [o.lock]).catch(() => {});
    c.release();
  }
  return pool;
}
