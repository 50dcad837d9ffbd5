/** What every sink implements. Writes are idempotent: the same batch may come again after a crash. */
import type { AlertRecord, SinkBatch } from '../records.js';

export interface Sink {
  readonly name: string;
  readonly type: 'postgres' | 'nats' | 'http' | 'file';
  /** Where it ships to, safe to log (no password). */
  readonly target: string;
  /** Connect / prepare (migrations, stream). `position` is what `position()` returned before the last durable cursor. */
  open(position: unknown): Promise<void>;
  /** Resolves only once the batch is durable at the destination; throws otherwise (the runner retries). */
  write(batch: SinkBatch): Promise<void>;
  alert(gatewayId: string, a: AlertRecord): Promise<void>;
  /** Sink-specific resume data stored with the cursor (the file sink's byte offset). */
  position(): unknown;
  close(): Promise<void>;
}

/** Not worth retrying: the destination contradicts the local log. Stops shipping with an alert. */
export class SinkConflict extends Error {
  constructor(
    readonly seq: number,
    message: string,
  ) {
    super(message);
    this.name = 'SinkConflict';
  }
}
