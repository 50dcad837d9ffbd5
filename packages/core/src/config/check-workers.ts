/**
 * `workers:` — how many connection worker processes share the listeners. What a worker
 * cannot share with the others is refused at load, never accepted and then broken at run
 * time: each worker is its own process, so anything a unit waits on must live outside it.
 */
import { availableParallelism } from 'node:os';
import type { ConfigProblem, GatehouseConfig, WorkersSetting } from './types.js';

/** Most workers one gateway forks (one audit writer feeds them all; see docs/performance.md). */
export const MAX_WORKERS = 256;

/** True for `auto` or an integer 1..MAX_WORKERS. */
export function isWorkersSetting(v: unknown): v is WorkersSetting {
  return v === 'auto' || (typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= MAX_WORKERS);
}

/** The number of processes to run: `auto` = the cores this process may use (capped). */
export function resolveWorkers(setting: WorkersSetting | undefined, cores: number = availableParallelism()): number {
  if (setting === undefined) return 1;
  return setting === 'auto' ? Math.max(1, Math.min(MAX_WORKERS, cores)) : setting;
}

/**
 * With more than one process possible (`auto` may be 1 on a small host, but the file must
 * not depend on the host it happens to load on): a held review waits on the approvals
 * store. The embedded SQLite store belongs to one process (its waiters, sweeps and pending
 * counts are in memory), while the verdict is given in the primary's admin API and the unit
 * is held in a worker. The shared PostgreSQL store is built for several processes
 * (LISTEN/NOTIFY wakes the one that holds the unit).
 */
export function checkWorkers(c: GatehouseConfig): ConfigProblem | null {
  const w = c.workers ?? 1;
  if (w === 1) return null;
  const reviewed = c.connectors.findIndex((conn) => conn.review !== undefined);
  if (reviewed >= 0 && (c.approvals?.store ?? 'sqlite') === 'sqlite') {
    return {
      path: ['workers'],
      message: `workers: ${w} cannot hold reviewed units with approvals.store: sqlite (connector "${c.connectors[reviewed].name}" has a review block): the embedded store belongs to one process, while verdicts are given in the primary and units are held in workers; use approvals.store: postgres or workers: 1`,
    };
  }
  return null;
}
