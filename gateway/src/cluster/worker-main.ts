/**
 * Entry point of a connection worker process (node:cluster `exec`, set by pool.ts). Nothing
 * else runs here: the worker waits for the primary's `start` message.
 */
import { runWorker } from './worker.js';

runWorker().catch((e: unknown) => {
  process.stderr.write(`gatehouse worker: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
