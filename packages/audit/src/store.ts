/**
 * On-disk layout of the audit log under data_dir, shared by the writer worker and the
 * offline readers. One SQLite file in WAL mode: the writer appends, readers never block it.
 */
import { closeSync, existsSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';

export const DB_FILE = 'audit.db';
export const KEY_FILE = 'audit-key';
export const PUB_FILE = 'audit-key.pub';
/** 2: the session index is built in bulk (`session_events`), not per event (decision 0107). */
export const SCHEMA_VERSION = '2';

export const dbPath = (dataDir: string) => join(dataDir, DB_FILE);
export const DURABLE_FILE = 'audit.durable';

/**
 * The durable watermark: the writer commits without waiting for the disk (decision 0105), so a
 * reader of audit.db can see events whose fsync has not completed yet — events a power cut
 * could still take back. After each completed sync the writer records here the highest seq it
 * covered (fixed-width text, rewritten in place, never fsynced itself: it only ever names
 * events that were already on disk, and a lost update only makes it older). A reader that
 * ships the log onward (the agent) reads no further than this.
 */
export class DurableMark {
  private readonly fd: number;
  private last = -1;
  constructor(dataDir: string) {
    const path = join(dataDir, DURABLE_FILE);
    // An existing mark stays until the first sync of this run replaces it (it named durable events).
    const fresh = !existsSync(path);
    this.fd = openSync(path, fresh ? 'w' : 'r+', 0o600);
    if (fresh) writeSync(this.fd, `${'0'.padStart(20, '0')}\n`, 0);
  }
  set(seq: number): void {
    if (seq <= this.last) return;
    this.last = seq;
    writeSync(this.fd, `${String(seq).padStart(20, '0')}\n`, 0);
  }
  close(): void {
    closeSync(this.fd);
  }
}

/** The durable watermark of a log, or null when its writer keeps none (a log written before it existed). */
export function readDurableSeq(dataDir: string): number | null {
  try {
    const n = Number.parseInt(readFileSync(join(dataDir, DURABLE_FILE), 'utf8'), 10);
    return Number.isSafeInteger(n) && n >= 0 ? n : null;
  } catch {
    return null;
  }
}
export const keyPath = (dataDir: string) => join(dataDir, KEY_FILE);
export const pubPath = (dataDir: string) => join(dataDir, PUB_FILE);

/**
 * `events.body` is the canonical JSON that was hashed (it holds seq and prev); the other
 * columns are copies for filtering, checked against the body by verifyLog. `time` is the
 * event's time as Unix milliseconds (null if unparsable): comparable whatever the offset.
 * `leaf` is the RFC 6962 leaf hash, kept so proofs need no re-hashing of bodies.
 *
 * `session_events` is the session index, filled in bulk by the writer (every second, in
 * session order) up to the seq in meta `session_indexed`; events after that are found by
 * scanning the short tail. An index maintained per event would dirty one B-tree page per live
 * session in every commit — at a few events per commit, most of what a commit writes
 * (decision 0107). verifyLog checks it against the events.
 */
export const SCHEMA = `
CREATE TABLE IF NOT EXISTS events (
  seq       INTEGER PRIMARY KEY,
  time      INTEGER,
  kind      TEXT NOT NULL,
  connector TEXT NOT NULL,
  session   TEXT NOT NULL,
  subject   TEXT,
  body      TEXT NOT NULL,
  prev      BLOB NOT NULL,
  hash      BLOB NOT NULL,
  leaf      BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS events_time ON events(time);
CREATE INDEX IF NOT EXISTS events_subject ON events(subject);
CREATE TABLE IF NOT EXISTS session_events (
  session TEXT NOT NULL,
  seq     INTEGER NOT NULL,
  PRIMARY KEY (session, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (
  id    INTEGER PRIMARY KEY,
  size  INTEGER NOT NULL,
  root  BLOB NOT NULL,
  time  TEXT NOT NULL,
  note  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS checkpoints_size ON checkpoints(size, id);
CREATE TABLE IF NOT EXISTS meta (
  key   TEXT PRIMARY KEY,
  value BLOB NOT NULL
);
`;

export type Db = Database.Database;

/** Read-only connection for offline tools; null when there is no log in dataDir. */
export function openReadOnly(dataDir: string): Db | null {
  const p = dbPath(dataDir);
  if (!existsSync(p)) return null;
  const db = new Database(p, { readonly: true, fileMustExist: true });
  db.pragma('busy_timeout = 5000');
  return db;
}

export function readMeta(db: Db, key: string): Buffer | null {
  const row = db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: Buffer | string } | undefined;
  if (!row) return null;
  return Buffer.isBuffer(row.value) ? row.value : Buffer.from(row.value, 'utf8');
}

/** Column value of `time`. */
export function timeMs(time: string): number | null {
  const t = Date.parse(time);
  return Number.isNaN(t) ? null : t;
}

/** Column value of `subject`. */
export function subjectOf(ev: { identity?: { subject?: unknown } | null }): string | null {
  return ev.identity && typeof ev.identity.subject === 'string' ? ev.identity.subject : null;
}

export interface EventRow {
  seq: number;
  time: number | null;
  kind: string;
  connector: string;
  session: string;
  subject: string | null;
  body: string;
  prev: Buffer;
  hash: Buffer;
  leaf: Buffer;
}

/** Through which seq `session_events` is complete (0: nothing indexed yet). */
export const SESSION_INDEXED = 'session_indexed';

/** Whether the log has the bulk session index (a log written before schema 2 has none). */
export function hasSessionIndex(db: Db): boolean {
  return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'session_events'").get() !== undefined;
}
