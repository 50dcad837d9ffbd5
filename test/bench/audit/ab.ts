/**
 * A/B of two builds of the audit package under the same load, in one run:
 *
 *   node test/dist/bench/audit/ab.js <path to a build's dist/src/index.js> strict|batched <appenders> <events> [rate]
 *
 * K concurrent appenders each await their append before the next (as connectors do before a
 * unit's final reply); prints events/s, p50/p99 append latency and the process's CPU per
 * event (all threads). With `rate` (events/s), the appenders are paced to that offered rate
 * instead of running closed loop: CPU per event at a fixed rate is what a gateway under a
 * steady load pays, and it includes each commit's fixed cost, which saturation hides. Build the other version in a separate checkout (`git worktree add`) and run both
 * builds alternately. Timings are reported, never asserted.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { openAuditLog as OpenAuditLog } from '@gatehouse/audit';
import { cpuOfThread } from '../lib/proc.js';
import { makeEvent } from './event.js';

const [build, durability, k, n, r] = process.argv.slice(2);
if (!build || (durability !== 'strict' && durability !== 'batched')) {
  console.error('usage: ab.js <audit dist/src/index.js> strict|batched [appenders=8] [events=20000]');
  process.exit(2);
}
const K = Number(k ?? 8);
const N = Number(n ?? 20_000);
const RATE = r === undefined ? 0 : Number(r);
const { openAuditLog } = (await import(pathToFileURL(resolve(build)).href)) as { openAuditLog: typeof OpenAuditLog };

const dir = mkdtempSync(join(tmpdir(), 'gh-audit-ab-'));
const log = await openAuditLog({ dataDir: dir, durability, windowMs: Number(process.env.AB_WINDOW_MS ?? 5), checkpointIntervalSec: 3600, origin: 'ab' });
const latencies: number[] = [];
let next = 0;
const cpu0 = process.cpuUsage();
const main0 = mainThreadCpuUs();
const t0 = performance.now();
await Promise.all(
  Array.from({ length: K }, async () => {
    while (next < N) {
      const i = next++;
      // Paced: event i is due at i / RATE seconds after the start.
      if (RATE > 0) await sleepUntil(t0 + (i * 1000) / RATE);
      if (RATE > 0 && durability === 'batched') {
        // As the gateway does under batched durability: nobody waits for the writer.
        log.appendDetached(makeEvent(i));
        continue;
      }
      const s = performance.now();
      await log.append(makeEvent(i));
      latencies.push(performance.now() - s);
    }
  }),
);
const seconds = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
const mainUs = mainThreadCpuUs() - main0;
await log.close();
rmSync(dir, { recursive: true, force: true });
latencies.sort((a, b) => a - b);
const at = (q: number) => (latencies.length ? Number(latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * q))].toFixed(2)) : null);
console.log(
  JSON.stringify({
    durability,
    appenders: K,
    rate: RATE || 'closed loop',
    events: N,
    eventsPerSec: Math.round(N / seconds),
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    cpuUsPerEvent: Number(((cpu.user + cpu.system) / N).toFixed(1)),
    // The writer thread (with its fsyncs) and helpers: everything but the appenders' thread.
    offMainUsPerEvent: Number(((cpu.user + cpu.system - mainUs) / N).toFixed(1)),
  }),
);

function sleepUntil(t: number): Promise<void> | undefined {
  const ms = t - performance.now();
  return ms > 0 ? new Promise((resolveSleep) => setTimeout(resolveSleep, ms)) : undefined;
}

/** utime + stime of this process's main thread (ticks of 10 ms: use runs of seconds). */
function mainThreadCpuUs(): number {
  const c = cpuOfThread(process.pid, process.pid);
  return c.user + c.system;
}
