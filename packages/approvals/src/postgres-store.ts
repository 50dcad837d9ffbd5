/**
 * The shared store: PostgreSQL, for several gateways. Changes are announced with NOTIFY on
 * one channel (`<instance> <id>`), so that a gateway holding a unit learns at once that
 * another gateway approved it; the service also polls (bounded), so a lost notification or
 * a dropped LISTEN connection only delays, never loses, a verdict.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import type { Logger } from '@gatehouse/core';
import { isError, type ApprovalStore, type Modify } from './store.js';
import { openSharedPool } from './shared-pool.js';
import type { ApprovalRecord, ApprovalStatus, GrantRecord } from './types.js';

const CHANNEL = 'gatehouse_approvals';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS approval_requests (
  id TEXT PRIMARY KEY, status TEXT NOT NULL, subject TEXT NOT NULL, issuer TEXT NOT NULL,
  connector TEXT NOT NULL, unit_hash TEXT NOT NULL, created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL, body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS approval_requests_unit ON approval_requests(subject, connector, unit_hash);
CREATE INDEX IF NOT EXISTS approval_requests_status ON approval_requests(status, expires_at);
CREATE TABLE IF NOT EXISTS approval_grants (
  id TEXT PRIMARY KEY, subject TEXT NOT NULL, connector TEXT NOT NULL, expires_at BIGINT NOT NULL, body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS approval_grants_subject ON approval_grants(subject, connector, expires_at);
`;

type Row = { body: string };
const rec = (rows: Row[]) => (rows[0] ? (JSON.parse(rows[0].body) as ApprovalRecord) : null);

export async function openPostgresStore(url: string, logger: Logger): Promise<ApprovalStore> {
  // An unreachable store refuses units (fail closed).
  const pool = await openSharedPool(url, logger, { max: 4, schema: SCHEMA, lock: 7370656, label: 'approvals store' });
  const instance = randomUUID();
  const listeners: ((id: string) => void)[] = [];
  let listener: pg.Client | null = null;
  let closed = false;
  let retry: NodeJS.Timeout | null = null;

  const listen = async () => {
    if (closed) return;
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
    const again = (e: Error) => {
      if (closed) return;
      logger.warn({ err: e.message }, 'approvals store: LISTEN connection lost; polling meanwhile, reconnecting');
      listener = null;
      client.end().catch(() => {});
      retry ??= setTimeout(() => {
        retry = null;
        void listen();
      }, 2000);
      retry.unref();
    };
    client.on('error', again);
    client.on('notification', (n) => {
      const [from, id] = (n.payload ?? '').split(' ');
      if (from === instance || !id) return;
      for (const l of listeners) l(id);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANNEL}`);
      if (closed) await client.end();
      else listener = client;
    } catch (e) {
      again(e as Error);
    }
  };
  await listen();

  const rows = async (sql: string, params: unknown[]) => (await pool.query<Row>(sql, params)).rows;
  return {
    kind: 'postgres',
    async insert(r) {
      await pool.query('INSERT INTO approval_requests (id, status, subject, issuer, connector, unit_hash, created_at, expires_at, body) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)', [
        r.id,
        r.status,
        r.requester.subject,
        r.requester.issuer,
        r.connector,
        r.unitHash,
        r.createdAt,
        r.expiresAt,
        JSON.stringify(r),
      ]);
    },
    async get(id) {
      return rec(await rows('SELECT body FROM approval_requests WHERE id = $1', [id]));
    },
    async list(status: ApprovalStatus | 'all', limit) {
      const r =
        status === 'all'
          ? await rows('SELECT body FROM approval_requests ORDER BY created_at DESC LIMIT $1', [limit])
          : await rows('SELECT body FROM approval_requests WHERE status = $1 ORDER BY created_at DESC LIMIT $2', [status, limit]);
      return r.map((x) => JSON.parse(x.body) as ApprovalRecord);
    },
    async countPending(subject, issuer, now) {
      const r = await pool.query<{ n: string }>("SELECT count(*) AS n FROM approval_requests WHERE subject = $1 AND issuer = $2 AND status = 'pending' AND expires_at > $3", [
        subject,
        issuer,
        now,
      ]);
      return Number(r.rows[0].n);
    },
    async findOpen(subject, issuer, connector, unitHash, now) {
      return rec(
        await rows(
          "SELECT body FROM approval_requests WHERE subject = $1 AND issuer = $2 AND connector = $3 AND unit_hash = $4 AND status IN ('pending','approved') AND expires_at > $5 ORDER BY status = 'approved' DESC, created_at DESC LIMIT 1",
          [subject, issuer, connector, unitHash, now],
        ),
      );
    },
    async modify<E>(id: string, fn: Modify<E>) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const r = rec((await client.query<Row>('SELECT body FROM approval_requests WHERE id = $1 FOR UPDATE', [id])).rows);
        if (!r) {
          await client.query('ROLLBACK');
          return null;
        }
        const next = fn(r);
        if (isError<E>(next)) {
          await client.query('ROLLBACK');
          return next;
        }
        await client.query('UPDATE approval_requests SET status = $1, expires_at = $2, body = $3 WHERE id = $4', [next.status, next.expiresAt, JSON.stringify(next), id]);
        await client.query('COMMIT');
        return next;
      } catch (e) {
        await client.query('ROLLBACK').catch(() => {});
        throw e;
      } finally {
        client.release();
      }
    },
    async due(now, limit) {
      const r = await pool.query<{ id: string }>("SELECT id FROM approval_requests WHERE status IN ('pending','approved') AND expires_at <= $1 LIMIT $2", [now, limit]);
      return r.rows.map((x) => x.id);
    },
    async insertGrant(g: GrantRecord) {
      await pool.query('INSERT INTO approval_grants (id, subject, connector, expires_at, body) VALUES ($1,$2,$3,$4,$5)', [
        g.id,
        g.subject,
        g.connector,
        g.expiresAt,
        JSON.stringify(g),
      ]);
    },
    async activeGrant(subject, connector, now) {
      const r = await rows('SELECT body FROM approval_grants WHERE subject = $1 AND connector = $2 AND expires_at > $3 ORDER BY expires_at DESC LIMIT 1', [
        subject,
        connector,
        now,
      ]);
      return r[0] ? (JSON.parse(r[0].body) as GrantRecord) : null;
    },
    async listGrants(now, limit) {
      const r = await rows('SELECT body FROM approval_grants WHERE expires_at > $1 ORDER BY expires_at DESC LIMIT $2', [now, limit]);
      return r.map((x) => JSON.parse(x.body) as GrantRecord);
    },
    async announce(id) {
      await pool.query('SELECT pg_notify($1, $2)', [CHANNEL, `${instance} ${id}`]);
    },
    onRemoteChange(cb) {
      listeners.push(cb);
    },
    async close() {
      closed = true;
      if (retry) clearTimeout(retry);
      await listener?.end().catch(() => {});
      await pool.end();
    },
  };
}
