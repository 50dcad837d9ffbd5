/**
 * How the audit writer commits while a load runs: events (sequence numbers in the audit DB),
 * commits and commit (fsync) latency. From /metrics when the gateway exports
 * `gatehouse_audit_commits_total` (and a commit-latency histogram); otherwise from an strace
 * of fsync/fdatasync on the WAL, with strace's seccomp filter so only those calls stop the
 * gateway (attaching with -p would stop it on every syscall).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { have } from './proc.js';
import { percentiles, round } from './stats.js';

/** Last committed sequence number of the audit log in `dataDir`. */
export function auditSeq(dataDir: string): number {
  const p = join(dataDir, 'audit.db');
  if (!existsSync(p)) return 0;
  const db = new Database(p, { readonly: true, fileMustExist: true });
  try {
    const row = db.prepare('SELECT max(seq) AS s FROM events').get() as { s: number | null };
    return row.s ?? 0;
  } finally {
    db.close();
  }
}

export interface MetricSample {
  commits: number;
  events: number;
  /** fsyncs of the WAL and the seconds spent in them (the writer may commit more often than it syncs). */
  syncs: number;
  syncSeconds: number;
  /** Cumulative sync-latency histogram: [upper bound in seconds, count]. */
  buckets: [number, number][];
}

/**
 * The audit writer's counters on /metrics, or null when this build exports none. The writer
 * reports them once a second, so each window's counts are as of up to a second earlier; over
 * runs of several seconds, back to back, that shifts both ends alike.
 */
export async function scrapeAuditMetrics(adminUrl: string): Promise<MetricSample | null> {
  const text = await fetch(`${adminUrl}/metrics`).then((r) => r.text());
  const one = (name: string) => {
    const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([\\d.e+-]+)$`, 'm').exec(text);
    return m ? Number(m[1]) : NaN;
  };
  const commits = one('gatehouse_audit_commits_total');
  if (Number.isNaN(commits)) return null;
  const buckets: [number, number][] = [];
  for (const m of text.matchAll(/^gatehouse_audit_sync_seconds_bucket\{le="([^"]+)"\} ([\d.e+-]+)$/gm)) buckets.push([m[1] === '+Inf' ? Infinity : Number(m[1]), Number(m[2])]);
  return {
    commits,
    events: one('gatehouse_audit_events_total'),
    syncs: one('gatehouse_audit_syncs_total'),
    syncSeconds: one('gatehouse_audit_sync_seconds_total'),
    buckets,
  };
}

/** True when the built gateway exports the commit counter (checked before starting it). */
export function buildHasCommitMetrics(repo: string): boolean {
  for (const f of ['packages/audit/dist/src', 'packages/audit/dist', 'gateway/dist/src']) {
    const dir = join(repo, f);
    if (!existsSync(dir)) continue;
    for (const name of ['metrics.js', 'index.js', 'audit-log.js', 'worker.js']) {
      const p = join(dir, name);
      if (existsSync(p) && readFileSync(p, 'utf8').includes('gatehouse_audit_commits_total')) return true;
    }
  }
  return false;
}

/** strace argv prefix writing each fsync/fdatasync with its wall time and file to `logFile`; null without strace. */
export function straceWrap(logFile: string): string[] | null {
  if (!have('strace')) return null;
  return ['strace', '-f', '-qq', '--seccomp-bpf', '-e', 'trace=fsync,fdatasync', '-ttt', '-T', '-y', '-o', logFile];
}

export interface SyncCall {
  /** Unix seconds at completion. */
  at: number;
  /** Wall time in the call, ms. */
  ms: number;
  file: string;
}

/** Completed fsync/fdatasync calls of an strace log (unfinished/resumed pairs joined). */
export function parseStrace(logFile: string): SyncCall[] {
  const calls: SyncCall[] = [];
  const pending = new Map<string, string>();
  if (!existsSync(logFile)) return calls;
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    const m = /^(\d+)\s+([\d.]+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const [, pid, at, rest] = m;
    const whole = /^f(?:data)?sync\(\d+<([^>]*)>\)\s+=\s+-?\d+.*<([\d.]+)>$/.exec(rest);
    if (whole) {
      calls.push({ at: Number(at), ms: Number(whole[2]) * 1000, file: whole[1] });
      continue;
    }
    const open = /^f(?:data)?sync\(\d+<([^>]*)> <unfinished \.\.\.>$/.exec(rest);
    if (open) {
      pending.set(pid, open[1]);
      continue;
    }
    const resumed = /^<\.\.\. f(?:data)?sync resumed>\)\s+=\s+-?\d+.*<([\d.]+)>$/.exec(rest);
    if (resumed) calls.push({ at: Number(at), ms: Number(resumed[1]) * 1000, file: pending.get(pid) ?? '' });
  }
  return calls;
}

export interface CommitFigures {
  source: 'metrics' | 'strace' | 'none';
  commits: number | null;
  commitsPerSec: number | null;
  eventsPerCommit: number | null;
  /** fsyncs of the WAL: what a strict reply waits for. */
  syncsPerSec: number | null;
  eventsPerSync: number | null;
  /** fsync latency, ms: mean, and p99 (from metrics: the upper bound of the histogram bucket holding it). */
  syncMsMean: number | null;
  syncMsP99: number | null;
}

export const NO_COMMIT_FIGURES: CommitFigures = {
  source: 'none',
  commits: null,
  commitsPerSec: null,
  eventsPerCommit: null,
  syncsPerSec: null,
  eventsPerSync: null,
  syncMsMean: null,
  syncMsP99: null,
};

/** From strace: each fsync/fdatasync of the WAL in [t0, t1] (Unix seconds) is one durable commit. */
export function commitsFromStrace(calls: SyncCall[], t0: number, t1: number, events: number): CommitFigures {
  const wal = calls.filter((c) => c.at >= t0 && c.at <= t1 && c.file.endsWith('-wal'));
  if (!wal.length) return { ...NO_COMMIT_FIGURES, source: 'strace', commits: 0, commitsPerSec: 0, syncsPerSec: 0 };
  const ms = wal.map((c) => c.ms);
  const perSec = round(wal.length / (t1 - t0), 0);
  const perSync = round(events / wal.length, 2);
  return {
    source: 'strace',
    commits: wal.length,
    commitsPerSec: perSec,
    eventsPerCommit: perSync,
    syncsPerSec: perSec,
    eventsPerSync: perSync,
    syncMsMean: round(ms.reduce((a, b) => a + b, 0) / ms.length),
    syncMsP99: round(percentiles(ms).p99),
  };
}

export function commitsFromMetrics(a: MetricSample, b: MetricSample, seconds: number): CommitFigures {
  const commits = b.commits - a.commits;
  const events = b.events - a.events;
  const syncs = b.syncs - a.syncs;
  // p99 of the window: the first bucket whose count delta reaches 99 % of the window's syncs.
  let p99 = NaN;
  const total = (b.buckets.find(([le]) => le === Infinity)?.[1] ?? 0) - (a.buckets.find(([le]) => le === Infinity)?.[1] ?? 0);
  for (const [le, n] of b.buckets) {
    const before = a.buckets.find(([l]) => l === le)?.[1] ?? 0;
    if (total > 0 && n - before >= total * 0.99) {
      p99 = le * 1000;
      break;
    }
  }
  return {
    source: 'metrics',
    commits,
    commitsPerSec: round(commits / seconds, 0),
    eventsPerCommit: commits > 0 ? round(events / commits, 2) : null,
    syncsPerSec: round(syncs / seconds, 0),
    eventsPerSync: syncs > 0 ? round(events / syncs, 2) : null,
    syncMsMean: syncs > 0 ? round(((b.syncSeconds - a.syncSeconds) / syncs) * 1000) : null,
    syncMsP99: Number.isFinite(p99) ? p99 : null,
  };
}
