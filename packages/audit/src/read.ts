/**
 * Offline / read side: read-only connections, safe while the gateway writes (WAL).
 * These are synchronous (better-sqlite3): call them from the CLI or a reader worker,
 * never from the event loop that relays traffic.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { AuditEvent } from '@gatehouse/core';
import { hasSessionIndex, openReadOnly, pubPath, SESSION_INDEXED, type Db } from './store.js';

export interface EventFilter {
  /** Only events with seq greater than this (a cursor: pass the last seq you saw). */
  sinceSeq?: number;
  /** RFC 3339; events at or after this time. */
  since?: string;
  /** RFC 3339; events strictly before this time. */
  until?: string;
  connector?: string;
  session?: string;
  subject?: string;
  kind?: string;
  /** readEvents: default 1000, at most 10000. iterateEvents: unlimited unless set. */
  limit?: number;
}

export const DEFAULT_LIMIT = 1000;
export const MAX_LIMIT = 10_000;

function parseTime(name: string, v: string): number {
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new Error(`${name}: not an RFC 3339 time: ${JSON.stringify(v)}`);
  return t;
}

/**
 * `bulkSessionIndex`: the log has `session_events` (schema 2), which is complete up to meta
 * `session_indexed`; the tail after it is scanned. Both halves are read in the one statement,
 * so they see the same snapshot of the log.
 */
function buildQuery(filter: EventFilter, limit: number | null, bulkSessionIndex: boolean): { sql: string; params: unknown[] } {
  const where: string[] = [];
  const params: unknown[] = [];
  if (filter.sinceSeq !== undefined) {
    if (!Number.isInteger(filter.sinceSeq)) throw new Error('sinceSeq must be an integer');
    where.push('seq > ?');
    params.push(filter.sinceSeq);
  }
  if (filter.since !== undefined) {
    where.push('time >= ?');
    params.push(parseTime('since', filter.since));
  }
  if (filter.until !== undefined) {
    where.push('time < ?');
    params.push(parseTime('until', filter.until));
  }
  for (const col of ['connector', 'session', 'subject', 'kind'] as const) {
    const v = filter[col];
    if (v !== undefined) {
      where.push(`${col} = ?`);
      params.push(v);
    }
  }
  if (filter.session !== undefined && bulkSessionIndex) {
    where.push(
      'seq IN (SELECT seq FROM session_events WHERE session = ? ' +
        `UNION ALL SELECT seq FROM events WHERE seq > (SELECT coalesce(max(CAST(value AS INTEGER)), 0) FROM meta WHERE key = '${SESSION_INDEXED}') AND session = ?)`,
    );
    params.push(filter.session, filter.session);
  }
  let sql = 'SELECT body, hash FROM events';
  if (where.length) sql += ' WHERE ' + where.join(' AND ');
  sql += ' ORDER BY seq';
  if (limit !== null) {
    sql += ' LIMIT ?';
    params.push(limit);
  }
  return { sql, params };
}

function toEvent(row: { body: string; hash: Buffer }): AuditEvent {
  const e = JSON.parse(row.body) as AuditEvent;
  e.hash = row.hash.toString('hex');
  return e;
}

function openOrThrow(dataDir: string): Db {
  const db = openReadOnly(dataDir);
  if (!db) throw new Error(`no audit log in ${dataDir}`);
  return db;
}

/** Events matching `filter`, ascending seq. Throws on a bad filter or a missing log. */
export function readEvents(dataDir: string, filter: EventFilter): AuditEvent[] {
  const limit = Math.min(Math.max(1, Math.floor(filter.limit ?? DEFAULT_LIMIT)), MAX_LIMIT);
  const db = openOrThrow(dataDir);
  try {
    const q = buildQuery(filter, limit, hasSessionIndex(db));
    return (db.prepare(q.sql).all(...q.params) as Array<{ body: string; hash: Buffer }>).map(toEvent);
  } finally {
    db.close();
  }
}

/** Streams matching events (for export); the connection closes when iteration ends or stops. */
export function* iterateEvents(dataDir: string, filter: EventFilter): IterableIterator<AuditEvent> {
  const db = openOrThrow(dataDir);
  try {
    const q = buildQuery(filter, filter.limit !== undefined ? Math.max(1, Math.floor(filter.limit)) : null, hasSessionIndex(db));
    for (const row of db.prepare(q.sql).iterate(...q.params) as Iterable<{ body: string; hash: Buffer }>) yield toEvent(row);
  } finally {
    db.close();
  }
}

/** The newest stored checkpoint note, or null when there is none (or no log). */
export function readLatestCheckpoint(dataDir: string): string | null {
  const db = openReadOnly(dataDir);
  if (!db) return null;
  try {
    const row = db.prepare('SELECT note FROM checkpoints ORDER BY id DESC LIMIT 1').get() as { note: string } | undefined;
    return row?.note ?? null;
  } finally {
    db.close();
  }
}

/** The note verifier key the writer published in data_dir/audit-key.pub. */
export function readVerifierKey(dataDir: string): string | null {
  const p = pubPath(dataDir);
  if (!existsSync(p)) return null;
  const text = readFileSync(p, 'utf8').trim();
  return text || null;
}
