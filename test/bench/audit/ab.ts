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
import type { AuditEventInput } from '@gatehouse/core';
import type { openAuditLog as OpenAuditLog } from '@gatehouse/audit';

const [build, durability, k, n] = process.argv.slice(2);
if (!build || (durability !== 'strict' && durability !== 'batched')) {
  console.error('usage: ab.js <audit dist/src/index.js> strict|batched [appenders=8] [events=20000]');
  process.exit(2);
}
const K = Number(k ?? 8);
const N = Number(n ?? 20_000);
const { openAuditLog } = (await import(pathToFileURL(resolve(build)).href)) as { openAuditLog: typeof OpenAuditLog };

const event = (i: number): AuditEventInput => ({
  time: new Date().toISOString(),
  kind: 'unit',
  connector: 'payments-db',
  protocol: 'postgres',
  session: `0b7d9c1e-3f4a-4e2b-9a51-${String(i % 64).padStart(12, '0')}`,
  identity: { subject: 'svc:billing', issuer: 'https://idp.example.com/', groups: ['payments'] },
  unit: { type: 'statement', text: 'SELECT id, amount FROM invoices WHERE customer_id = $1', params: [String(i)] },
  decision: { action: 'allow' },
  result: { status: 'SELECT 5', rows: 5, durationMs: 0.42 },
});

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
      await log.append(event(i));
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
