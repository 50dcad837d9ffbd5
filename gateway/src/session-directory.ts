/**
 * The deployment's session directory: with `approvals.store: postgres`, the gateways of one
 * deployment share a PostgreSQL database, and each records there when its sessions start and
 * end (table `gatehouse_sessions`), so that the admin API of any gateway lists every
 * gateway's sessions (`GET /api/v1/sessions?scope=deployment`).
 *
 * Best effort by design: the local audit log (shipped by the agent) is the record of truth,
 * this is an index of it. Writes go through one bounded queue, one statement at a time,
 * never waited for by a session; when the database is unreachable they are retried a few
 * times, then dropped and counted, and the gateway keeps serving.
 */
import type { Logger, SessionDirectory, SessionEntry } from '@gatehouse/core';
import { openSharedPool } from '@gatehouse/approvals';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS gatehouse_sessions (
  id UUID PRIMARY KEY,
  gateway_id TEXT NOT NULL,
  connector TEXT NOT NULL,
  protocol TEXT NOT NULL,
  subject TEXT NOT NULL,
  issuer TEXT NOT NULL,
  peer TEXT NOT NULL,
  started_at TIMESTAMPTZ NOT NULL,
  ended_at TIMESTAMPTZ,
  end_reason TEXT,
  units INTEGER
);
CREATE INDEX IF NOT EXISTS gatehouse_sessions_started ON gatehouse_sessions(started_at);
CREATE INDEX IF NOT EXISTS gatehouse_sessions_subject ON gatehouse_sessions(subject, started_at);
`;

/** Writes waiting beyond this are dropped (oldest first): memory stays bounded while the database is away. */
const MAX_QUEUE = 10_000;
const ATTEMPTS = 3;
const LIST_LIMIT = 1000;

export interface DirectoryFilter {
  /** ms since the epoch. */
  since?: number;
  connector?: string;
  subject?: string;
  gateway?: string;
  limit?: number;
}

export interface DirectoryRow {
  id: string;
  gateway_id: string;
  connector: string;
  protocol: string;
  subject: string;
  issuer: string;
  peer: string;
  started: string;
  ended: string | null;
  reason: string | null;
  units: number | null;
}

export interface SharedSessionDirectory extends SessionDirectory {
  list(filter: DirectoryFilter): Promise<DirectoryRow[]>;
  /** Writes that could not be made (the database was unreachable), since start. */
  readonly dropped: number;
  /** Waits (bounded) for queued writes, then closes the pool. */
  close(): Promise<void>;
}

type Write = { sql: string; params: unknown[]; tries: number };

export async function openSessionDirectory(url: string, gatewayId: string, logger: Logger): Promise<SharedSessionDirectory> {
  const log = logger.child({ component: 'session-directory' });
  const pool = await openSharedPool(url, log, { max: 2, schema: SCHEMA, lock: 7370657, label: 'session directory' });

  const queue: Write[] = [];
  let running: Promise<void> | null = null;
  let dropped = 0;
  let closed = false;

  const drain = async () => {
    while (queue.length > 0) {
      const w = queue[0];
      try {
        await pool.query(w.sql, w.params);
        queue.shift();
      } catch (e) {
        if (++w.tries >= ATTEMPTS || closed) {
          queue.shift();
          dropped++;
          log.warn({ err: (e as Error).message, dropped }, 'session directory: a write was dropped (the audit log still has the session)');
        } else {
          await new Promise((r) => setTimeout(r, 200 * w.tries));
        }
      }
    }
  };
  const enqueue = (sql: string, params: unknown[]) => {
    if (closed) return;
    if (queue.length >= MAX_QUEUE) {
      queue.shift();
      dropped++;
    }
    queue.push({ sql, params, tries: 0 });
    running ??= drain().finally(() => (running = null));
  };

  return {
    get dropped() {
      return dropped;
    },
    opened(e: SessionEntry) {
      enqueue(
        `INSERT INTO gatehouse_sessions (id, gateway_id, connector, protocol, subject, issuer, peer, started_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, to_timestamp($8 / 1000.0)) ON CONFLICT (id) DO NOTHING`,
        [e.id, gatewayId, e.connector, e.protocol, e.subject, e.issuer, e.peer, e.startedAt],
      );
    },
    closed(id: string, reason: string, units: number) {
      enqueue('UPDATE gatehouse_sessions SET ended_at = now(), end_reason = $2, units = $3 WHERE id = $1', [id, reason, units]);
    },
    async list(f: DirectoryFilter) {
      const where: string[] = [];
      const params: unknown[] = [];
      const add = (cond: string, v: unknown) => {
        params.push(v);
        where.push(cond.replace('?', `$${params.length}`));
      };
      if (f.since !== undefined) add('started_at >= to_timestamp(? / 1000.0)', f.since);
      if (f.connector) add('connector = ?', f.connector);
      if (f.subject) add('subject = ?', f.subject);
      if (f.gateway) add('gateway_id = ?', f.gateway);
      params.push(Math.min(f.limit ?? LIST_LIMIT, LIST_LIMIT));
      const r = await pool.query<DirectoryRow>(
        `SELECT id, gateway_id, connector, protocol, subject, issuer, peer,
                to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS started,
                to_char(ended_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS ended,
                end_reason AS reason, units
           FROM gatehouse_sessions ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
          ORDER BY started_at DESC LIMIT $${params.length}`,
        params,
      );
      return r.rows;
    },
    async close() {
      const pending = running;
      if (pending) await Promise.race([pending, new Promise((r) => setTimeout(r, 5000))]);
      closed = true;
      await pool.end().catch(() => {});
    },
  };
}
