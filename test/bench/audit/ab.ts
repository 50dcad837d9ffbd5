/**
 * A/B of two builds of the audit package under the same load, in one run:
 *
 *   node test/dist/bench/audit/ab.js <path to a build's dist/src/index.js> strict|batched <appenders> <events>
 *
 * K concurrent appenders each await their append before the next (as connectors do before a
 * unit's final reply); prints events/s, p50/p99 append latency and the process's CPU per
 * event. Build the other version in a separate checkout (`git worktree add`) and run both
 * builds alternately. Timings are reported, never asserted.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { openAuditLog as OpenAuditLog } from '@gatehouse/audit';
import { makeEvent } from './event.js';

const [build, durability, k, n] = process.argv.slice(2);
if (!build || (durability !== 'strict' && durability !== 'batched')) {
  console.error('usage: ab.js <audit dist/src/index.js> strict|batched [appenders=8] [events=20000]');
  process.exit(2);
}
const K = Number(k ?? 8);
const N = Number(n ?? 20_000);
const { openAuditLog } = (await import(pathToFileURL(resolve(build)).href)) as { openAuditLog: typeof OpenAuditLog };

const dir = mkdtempSync(join(tmpdir(), 'gh-audit-ab-'));
const log = await openAuditLog({ dataDir: dir, durability, windowMs: 5, checkpointIntervalSec: 3600, origin: 'ab' });
const latencies: number[] = [];
let next = 0;
const cpu0 = process.cpuUsage();
const t0 = performance.now();
await Promise.all(
  Array.from({ length: K }, async () => {
    while (next < N) {
      const i = next++;
      const s = performance.now();
      await log.append(makeEvent(i));
      latencies.push(performance.now() - s);
    }
  }),
);
const seconds = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
await log.close();
rmSync(dir, { recursive: true, force: true });
latencies.sort((a, b) => a - b);
const at = (q: number) => Number(latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * q))].toFixed(2));
console.log(
  JSON.stringify({
    durability,
    appenders: K,
    events: N,
    eventsPerSec: Math.round(N / seconds),
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    cpuUsPerEvent: Number(((cpu.user + cpu.system) / N).toFixed(1)),
  }),
);
