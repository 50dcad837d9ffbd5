/**
 * SIEM over HTTP: each batch is one POST of JSON lines (`application/x-ndjson`), signed with
 * HMAC-SHA256 over `<timestamp>.<body>`:
 *
 *   X-Gatehouse-Timestamp: <Unix seconds>
 *   X-Gatehouse-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>
 *   X-Gatehouse-Gateway:   <gateway_id>
 *   Idempotency-Key:       <gateway_id>/<first seq>-<last seq>[/<checkpoint size>]
 *
 * Any 2xx acknowledges the batch; anything else (or no answer within `timeout`) is retried.
 */
import { createHmac } from 'node:crypto';
import { redactUrl } from '../log.js';
import { alertLine, batchLines, type AlertRecord, type SinkBatch } from '../records.js';
import type { Sink } from './sink.js';

export const SIGNATURE_HEADER = 'x-gatehouse-signature';
export const TIMESTAMP_HEADER = 'x-gatehouse-timestamp';

export function signBody(secret: string, timestamp: string, body: string): string {
  return 'sha256=' + createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
}

export class HttpSink implements Sink {
  readonly type = 'http';

  constructor(
    readonly name: string,
    private readonly url: string,
    private readonly secret: string,
    private readonly timeoutMs: number,
  ) {}

  get target(): string {
    return redactUrl(this.url);
  }

  open(): Promise<void> {
    return Promise.resolve();
  }

  async write(b: SinkBatch): Promise<void> {
    const lines = batchLines(b);
    if (!lines.length) return;
    const first = b.events[0]?.seq;
    const last = b.events.at(-1)?.seq;
    const key = `${b.gatewayId}/${first ?? '-'}-${last ?? '-'}${b.checkpoints.length ? `/${b.checkpoints.at(-1)!.size}` : ''}`;
    await this.post(b.gatewayId, lines.join('\n') + '\n', key);
  }

  async alert(gatewayId: string, a: AlertRecord): Promise<void> {
    await this.post(gatewayId, alertLine(gatewayId, a) + '\n', `${gatewayId}/alert/${a.time}`);
  }

  private async post(gatewayId: string, body: string, idempotencyKey: string): Promise<void> {
    const ts = String(Math.floor(Date.now() / 1000));
    const res = await fetch(this.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-ndjson',
        [TIMESTAMP_HEADER]: ts,
        [SIGNATURE_HEADER]: signBody(this.secret, ts, body),
        'x-gatehouse-gateway': gatewayId,
        'idempotency-key': idempotencyKey,
      },
      body,
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    // Drain the body so the connection can be reused; its content is not ours to log.
    await res.arrayBuffer().catch(() => undefined);
    if (res.status < 200 || res.status > 299) throw new Error(`HTTP ${res.status} from ${this.target}`);
  }

  position(): unknown {
    return null;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
