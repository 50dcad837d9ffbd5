/**
 * Audit log throughput and append latency, strict vs batched.
 *
 *   cd /work/main && npx tsc -b test && node test/dist/bench/audit/bench.js [--events N] [--strict-events N] [--window-ms N]
 *
 * Each mode appends realistic ~400-byte events from K concurrent "sessions" (each awaits
 * its append before the next, as a connector does before the unit's final reply), measures
 * the time to resolve of every append, then closes the log (final commit + checkpoint) and
 * verifies it. Prints a JSON summary and a table. Timings are reported, never asserted.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { canonicalJson, openAuditLog, verifyLog } from '@gatehouse/audit';
import { makeEvent } from './event.js';

interface ModeResult {
  mode: 'strict' | 'batched';
  windowMs: number;
  events: number;
  sessions: number;
  seconds: number;
  eventsPerSec: number;
  /** Including close(): everything committed and a final checkpoint signed. */
  durableEventsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  verified: boolean;
}

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function runMode(mode: 'strict' | 'batched', events: number, sessions: number, windowMs = 5): Promise<ModeResult> {
  const dir = mkdtempSync(join(tmpdir(), `gh-audit-bench-${mode}-`));
  try {
    const log = await openAuditLog({ dataDir: dir, durability: mode, windowMs, checkpointIntervalSec: 60, origin: 'bench.gatehouse/audit' });
    const template = Array.from({ length: 64 }, (_, i) => makeEvent(i));
    const lat = new Float64Array(events);
    let next = 0;
    const t0 = performance.now();
    const session = async () => {
      for (let i = next++; i < events; i = next++) {
        // A fresh object per event, as a Session builds one per unit.
        const e = { ...template[i & 63], time: new Date().toISOString() };
        const s = performance.now();
        await log.append(e);
        lat[i] = performance.now() - s;
      }
    };
    await Promise.all(Array.from({ length: sessions }, session));
    const t1 = performance.now();
    await log.close();
    const t2 = performance.now();
    const report = verifyLog(dir);
    lat.sort();
    return {
      mode,
      windowMs,
      events,
      sessions,
      seconds: +((t1 - t0) / 1000).toFixed(3),
      eventsPerSec: Math.round(events / ((t1 - t0) / 1000)),
      durableEventsPerSec: Math.round(events / ((t2 - t0) / 1000)),
      p50Ms: +percentile(lat, 50).toFixed(3),
      p99Ms: +percentile(lat, 99).toFixed(3),
      maxMs: +lat[lat.length - 1].toFixed(3),
      verified: report.ok && report.size === events,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Baseline: the same events, JSON.stringify'd and inserted on one thread in transactions
 * of 1000 with synchronous=FULL — no canonical form, no hashes, no worker, no index but the
 * primary key. The floor the audit log's overhead is measured against.
 */
function baseline(events: number): { eventsPerSec: number } {
  const dir = mkdtempSync(join(tmpdir(), 'gh-audit-bench-raw-'));
  try {
    const db = new Database(join(dir, 'raw.db'));
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.exec('CREATE TABLE events (seq INTEGER PRIMARY KEY, body TEXT NOT NULL)');
    const ins = db.prepare('INSERT INTO events (body) VALUES (?)');
    const tx = db.transaction((from: number, to: number) => {
      for (let i = from; i < to; i++) ins.run(JSON.stringify(makeEvent(i)));
    });
    const t0 = performance.now();
    for (let i = 0; i < events; i += 1000) tx(i, Math.min(events, i + 1000));
    const s = (performance.now() - t0) / 1000;
    db.close();
    return { eventsPerSec: Math.round(events / s) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const batchedEvents = arg('events', 200_000);
  const strictEvents = arg('strict-events', 50_000);
  const eventBytes = Buffer.byteLength(canonicalJson({ ...makeEvent(1), seq: 123456, prev: '0'.repeat(64) }));
  const results: ModeResult[] = [];
  // Warm-up (JIT, page cache), not reported.
  await runMode('batched', 5_000, 64);
  results.push(await runMode('batched', batchedEvents, 1024, arg('window-ms', 5)));
  results.push(await runMode('strict', strictEvents, 64));
  const base = baseline(batchedEvents);
  const summary = {
    bench: 'audit',
    node: process.version,
    eventBytes,
    targets: { batchedEventsPerSec: 50_000, strictP99Ms: 2 },
    results,
    baselineRawSqlite: base,
    batchedVsRaw: +(results[0].eventsPerSec / base.eventsPerSec).toFixed(2),
  };
  console.log(JSON.stringify(summary, null, 2));
  const cols = ['mode', 'windowMs', 'events', 'sessions', 'seconds', 'eventsPerSec', 'durableEventsPerSec', 'p50Ms', 'p99Ms', 'maxMs', 'verified'] as const;
  const rows = [cols.map(String), ...results.map((r) => cols.map((c) => String(r[c])))];
  const widths = cols.map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) console.log(r.map((v, i) => v.padStart(widths[i])).join('  '));
  console.log(`baseline (raw SQLite, one thread, no hashing): ${base.eventsPerSec} events/s; batched audit log = ${summary.batchedVsRaw}x of it`);
}

await main();
