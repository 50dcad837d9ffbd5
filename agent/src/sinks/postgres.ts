/**
 * The central store. One transaction per batch: events (idempotent on (gateway_id, seq)),
 * then the checkpoints they complete. A row already there with a different hash is not a
 * duplicate but a contradiction: SinkConflict, which stops the agent with an alert.
 */
import pg from 'pg';
import { redactUrl } from '../log.js';
import type { AlertRecord, SinkBatch } from '../records.js';
import { migrate } from '../central-schema.js';
import { SinkConflict, type Sink } from './sink.js';

export class PostgresSink implements Sink {
  readonly type = 'postgres';
  private client: pg.Client | null = null;
  private registered = false;

  constructor(
    readonly name: string,
    private readonly url: string,
  ) {}

  get target(): string {
    return redactUrl(this.url);
  }

  async open(): Promise<void> {
    await this.close();
    const c = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: 10_000, query_timeout: 60_000, application_name: `gatehouse-agent ${this.name}` });
    // An error on an idle connection must not crash the process: the next write fails and reconnects.
    c.on('error', () => undefined);
    try {
      await c.connect();
      await migrate(c);
    } catch (e) {
      await c.end().catch(() => undefined);
      throw e;
    }
    this.client = c;
    this.registered = false;
  }

  private conn(): pg.Client {
    if (!this.client) throw new Error('not connected');
    return this.client;
  }

  /** The first checkpoint's key becomes the gateway's; a different one later is a conflict. */
  private async register(c: pg.Client, gatewayId: string, verifierKey: string): Promise<void> {
    await c.query('INSERT INTO gatehouse.gateways (gateway_id, verifier_key) VALUES ($1, $2) ON CONFLICT (gateway_id) DO NOTHING', [gatewayId, verifierKey]);
    const { rows } = await c.query<{ verifier_key: string }>('SELECT verifier_key FROM gatehouse.gateways WHERE gateway_id = $1', [gatewayId]);
    if (rows[0].verifier_key !== verifierKey) {
      throw new SinkConflict(1, `central store has gateway ${gatewayId} registered with another verifier key (${rows[0].verifier_key}); this log is signed by ${verifierKey}`);
    }
    this.registered = true;
  }

  async write(b: SinkBatch): Promise<void> {
    const c = this.conn();
    try {
      await c.query('BEGIN');
      if (!this.registered) await this.register(c, b.gatewayId, b.verifierKey);
      if (b.events.length) await this.insertEvents(c, b);
      for (const cp of b.checkpoints) {
        await c.query(
          `INSERT INTO gatehouse.checkpoints (gateway_id, size, root, note, cosignature, witness_key) VALUES ($1, $2, decode($3, 'base64'), $4, $5, $6)
           ON CONFLICT (gateway_id, note) DO NOTHING`,
          [b.gatewayId, cp.size, cp.root, cp.note, cp.cosignature ?? null, cp.witnessKey ?? null],
        );
      }
      await c.query('COMMIT');
    } catch (e) {
      await c.query('ROLLBACK').catch(() => undefined);
      // A broken connection is replaced on the next attempt; a conflict stops the agent.
      if (!(e instanceof SinkConflict)) await this.close();
      throw e;
    }
  }

  private async insertEvents(c: pg.Client, b: SinkBatch): Promise<void> {
    const seqs = b.events.map((e) => e.seq);
    const { rows } = await c.query<{ seq: string }>(
      `INSERT INTO gatehouse.events (gateway_id, seq, hash, body)
       SELECT $1, s, decode(h, 'hex'), body FROM unnest($2::bigint[], $3::text[], $4::text[]) AS t(s, h, body)
       ON CONFLICT (gateway_id, seq) DO NOTHING RETURNING seq`,
      [b.gatewayId, seqs, b.events.map((e) => e.hash), b.events.map((e) => e.body)],
    );
    if (rows.length === b.events.length) return;
    // Some were there already (a re-sent batch): they must be the very same events.
    const inserted = new Set(rows.map((r) => Number(r.seq)));
    const dup = b.events.filter((e) => !inserted.has(e.seq));
    const have = await c.query<{ seq: string; hash: string }>("SELECT seq, encode(hash, 'hex') AS hash FROM gatehouse.events WHERE gateway_id = $1 AND seq = ANY($2::bigint[])", [
      b.gatewayId,
      dup.map((e) => e.seq),
    ]);
    const byseq = new Map(have.rows.map((r) => [Number(r.seq), r.hash]));
    for (const e of dup) {
      if (byseq.get(e.seq) !== e.hash) {
        throw new SinkConflict(e.seq, `central store already holds event ${e.seq} of ${b.gatewayId} with another hash (local log rewritten, or two gateways share one gateway_id)`);
      }
    }
  }

  async alert(gatewayId: string, a: AlertRecord): Promise<void> {
    if (!this.client) await this.open();
    await this.conn().query('INSERT INTO gatehouse.alerts (gateway_id, time, code, seq, message, sink) VALUES ($1, $2, $3, $4, $5, $6)', [
      gatewayId,
      a.time,
      a.code,
      a.seq ?? null,
      a.message,
      this.name,
    ]);
  }

  position(): unknown {
    return null;
  }

  async close(): Promise<void> {
    const c = this.client;
    this.client = null;
    if (c) await c.end().catch(() => undefined);
  }
}
