/**
 * NATS JetStream. One stream per deployment (created if missing, subjects `<subject>.>`);
 * events go to `<subject>.<gateway_id>.event`, checkpoints to `.checkpoint`, alerts to
 * `.alert`. Each message carries `Nats-Msg-Id: <gateway_id>/<seq>` (checkpoints:
 * `<gateway_id>/cp/<size>/<note hash>`) so the stream drops a batch re-sent after a crash
 * within its duplicate window; every publish acknowledgement is awaited (pipelined per batch).
 */
import { connect, nanos, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamClient } from '@nats-io/jetstream';
import { sha256 } from '@gatehouse/audit';
import { redactUrl } from '../log.js';
import { alertLine, checkpointLine, eventLine, type AlertRecord, type SinkBatch } from '../records.js';
import type { Sink } from './sink.js';

/** Re-sends after a crash come within seconds; two minutes (the JetStream default) covers a slow restart. */
const DUPLICATE_WINDOW_MS = 2 * 60_000;
const ACK_TIMEOUT_MS = 10_000;

export class NatsSink implements Sink {
  readonly type = 'nats';
  private nc: NatsConnection | null = null;
  private js: JetStreamClient | null = null;

  constructor(
    readonly name: string,
    private readonly url: string,
    private readonly subject: string,
    private readonly stream: string,
  ) {}

  get target(): string {
    return `${redactUrl(this.url)} stream ${this.stream}`;
  }

  async open(): Promise<void> {
    await this.close();
    // Reconnects are ours (the runner's back-off): a closed connection is simply reopened.
    const nc = await connect({ servers: this.url.split(','), timeout: 5000, reconnect: false, name: `gatehouse-agent ${this.name}` });
    try {
      const jsm = await jetstreamManager(nc, { timeout: ACK_TIMEOUT_MS });
      try {
        await jsm.streams.info(this.stream);
      } catch {
        await jsm.streams.add({ name: this.stream, subjects: [`${this.subject}.>`], storage: 'file', duplicate_window: nanos(DUPLICATE_WINDOW_MS) });
      }
      this.nc = nc;
      this.js = jetstream(nc, { timeout: ACK_TIMEOUT_MS });
    } catch (e) {
      await nc.close().catch(() => undefined);
      throw e;
    }
  }

  private client(): JetStreamClient {
    if (!this.js || !this.nc || this.nc.isClosed()) throw new Error('NATS connection closed');
    return this.js;
  }

  async write(b: SinkBatch): Promise<void> {
    const js = this.client();
    const gw = b.gatewayId;
    const acks: Promise<unknown>[] = [];
    for (const e of b.events) acks.push(js.publish(`${this.subject}.${gw}.event`, eventLine(gw, e), { msgID: `${gw}/${e.seq}` }));
    for (const c of b.checkpoints) {
      acks.push(js.publish(`${this.subject}.${gw}.checkpoint`, checkpointLine(gw, c), { msgID: `${gw}/cp/${c.size}/${sha256(c.note).toString('hex').slice(0, 16)}` }));
    }
    // Every acknowledgement must arrive; one failure fails the batch (it is re-sent whole, duplicates are dropped).
    const results = await Promise.allSettled(acks);
    const bad = results.find((r) => r.status === 'rejected');
    if (bad) throw bad.reason instanceof Error ? bad.reason : new Error(String(bad.reason));
  }

  async alert(gatewayId: string, a: AlertRecord): Promise<void> {
    await this.client().publish(`${this.subject}.${gatewayId}.alert`, alertLine(gatewayId, a), { msgID: `${gatewayId}/alert/${a.time}` });
  }

  position(): unknown {
    return null;
  }

  async close(): Promise<void> {
    const nc = this.nc;
    this.nc = null;
    this.js = null;
    if (nc && !nc.isClosed()) await nc.close().catch(() => undefined);
  }
}
