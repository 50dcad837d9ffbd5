/** Messages between the main thread (AuditLog) and the writer worker. */
import type { AuditEventInput } from '@gatehouse/core';

export interface WriterConfig {
  dataDir: string;
  durability: 'strict' | 'batched';
  windowMs: number;
  checkpointIntervalSec: number;
  origin: string;
  keyName: string;
}

export type ToWorker = { t: 'append'; id: number; events: AuditEventInput[] } | { t: 'size'; id: number } | { t: 'close' };

export type FromWorker =
  | { t: 'ready'; size: number; verifierKey: string; checkpoint: string }
  /**
   * The batch `id` got consecutive seqs from `firstSeq`, skipping the events listed in
   * `bad` (index, reason), which were refused individually (e.g. not representable).
   * strict: sent after the commit; batched: sent on acceptance.
   */
  | { t: 'ack'; id: number; firstSeq: number; bad?: Array<[number, string]> }
  | { t: 'size'; id: number; size: number }
  | { t: 'checkpoint'; note: string }
  | { t: 'failed'; message: string }
  | { t: 'closed' };
