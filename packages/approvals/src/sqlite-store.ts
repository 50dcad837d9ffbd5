/**
 * The embedded store: data_dir/approvals.db (WAL). One gateway owns a data_dir, and
 * better-sqlite3 is synchronous, so a read-modify-write inside one transaction is atomic.
 */
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { isError, type ApprovalStore, type Modify } from './store.js';
import type { ApprovalRecord, ApprovalStatus, GrantRecord } from './types.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS approval_requests (
  id TEXT PRIMARY KEY, status TEXT NOT NULL, subject TEXT NOT NULL, issuer TEXT NOT NULL,
  connector TEXT NOT NULL, unit_hash TEXT NOT NULL, created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL, body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS approval_requests_unit ON approval_requests(subject, connector, unit_hash);
CREATE INDEX IF NOT EXISTS approval_requests_status ON approval_requests(status, expires_at);
CREATE TABLE IF NOT EXISTS approval_grants (
  id TEXT PRIMARY KEY, subject TEXT NOT NULL, connector TEXT NOT NULL, expires_at INTEGER NOT NULL, body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS approval_grants_subject ON approval_grants(subject, connector, expires_at);
`;

type Row = { body: string };

/** better-sqlite3 is synchronous; the store interface is not (PostgreSQL): a throw becomes a rejection. */
function later<T>(f: () => T): Promise<T> {
  try {
    return Promise.resolve(f());
  } catch (e) {
    return Promise.reject(e instanceof Error ? e : new Error(String(e)));
  }
}

export function openSqliteStore(dataDir: string): ApprovalStore {
  const db = new Database(join(dataDir, 'approvals.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('busy_timeout = 2000');
  db.exec(SCHEMA);
  const parse = (r: Row | undefined) => (r ? (JSON.parse(r.body) as ApprovalRecord) : null);
  const q = {
    insert: db.prepare('INSERT INTO approval_requests (id, status, subject, issuer, connector, unit_hash, created_at, expires_at, body) VALUES (?,?,?,?,?,?,?,?,?)'),
    get: db.prepare('SELECT body FROM approval_requests WHERE id = ?'),
    update: db.prepare('UPDATE approval_requests SET status = ?, expires_at = ?, body = ? WHERE id = ?'),
    listAll: db.prepare('SELECT body FROM approval_requests ORDER BY created_at DESC LIMIT ?'),
    list: db.prepare('SELECT body FROM approval_requests WHERE status = ? ORDER BY created_at DESC LIMIT ?'),
    countPending: db.prepare("SELECT count(*) AS n FROM approval_requests WHERE subject = ? AND issuer = ? AND status = 'pending' AND expires_at > ?"),
    findOpen: db.prepare(
      "SELECT body FROM approval_requests WHERE subject = ? AND issuer = ? AND connector = ? AND unit_hash = ? AND status IN ('pending','approved') AND expires_at > ? ORDER BY status = 'approved' DESC, created_at DESC LIMIT 1",
    ),
    due: db.prepare("SELECT id FROM approval_requests WHERE status IN ('pending','approved') AND expires_at <= ? LIMIT ?"),
    insertGrant: db.prepare('INSERT INTO approval_grants (id, subject, connector, expires_at, body) VALUES (?,?,?,?,?)'),
    activeGrant: db.prepare('SELECT body FROM approval_grants WHERE subject = ? AND connector = ? AND expires_at > ? ORDER BY expires_at DESC LIMIT 1'),
    listGrants: db.prepare('SELECT body FROM approval_grants WHERE expires_at > ? ORDER BY expires_at DESC LIMIT ?'),
  };
  return {
    kind: 'sqlite',
    insert(r) {
      return later(() => {
        q.insert.run(r.id, r.status, r.requester.subject, r.requester.issuer, r.connector, r.unitHash, r.createdAt, r.expiresAt, JSON.stringify(r));
      });
    },
    get(id) {
      return later(() => parse(q.get.get(id) as Row | undefined));
    },
    list(status: ApprovalStatus | 'all', limit) {
      return later(() => {
        const rows = (status === 'all' ? q.listAll.all(limit) : q.list.all(status, limit)) as Row[];
        return rows.map((r) => JSON.parse(r.body) as ApprovalRecord);
      });
    },
    countPending(subject, issuer, now) {
      return later(() => (q.countPending.get(subject, issuer, now) as { n: number }).n);
    },
    findOpen(subject, issuer, connector, unitHash, now) {
      return later(() => parse(q.findOpen.get(subject, issuer, connector, unitHash, now) as Row | undefined));
    },
    modify<E>(id: string, fn: Modify<E>) {
      return later(() => {
        return db
          .transaction(() => {
            const r = parse(q.get.get(id) as Row | undefined);
            if (!r) return null;
            const next = fn(r);
            if (isError<E>(next)) return next;
            q.update.run(next.status, next.expiresAt, JSON.stringify(next), id);
            return next;
          })
          .immediate();
      });
    },
    due(now, limit) {
      return later(() => (q.due.all(now, limit) as { id: string }[]).map((r) => r.id));
    },
    insertGrant(g: GrantRecord) {
      return later(() => {
        q.insertGrant.run(g.id, g.subject, g.connector, g.expiresAt, JSON.stringify(g));
      });
    },
    activeGrant(subject, connector, now) {
      return later(() => {
        const r = q.activeGrant.get(subject, connector, now) as Row | undefined;
        return r ? (JSON.parse(r.body) as GrantRecord) : null;
      });
    },
    listGrants(now, limit) {
      return later(() => (q.listGrants.all(now, limit) as Row[]).map((r) => JSON.parse(r.body) as GrantRecord));
    },
    announce() {
      return Promise.resolve();
    },
    onRemoteChange() {},
    close() {
      return later(() => {
        db.close();
      });
    },
  };
}
