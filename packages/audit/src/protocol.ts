/** Messages between the main thread (AuditLog) and the writer worker. */
import type { AuditEventInput } from '@gatehouse/core';
import type { SyncStats } from './wal-sync.js';

export interface WriterConfig {
  dataDir: string;
  durability: 'strict' | 'batched';
  /**
   * strict: unused. batched: how long the writer may keep a transaction open after the
   * first event of it arrives — the window minus the main thread's gathering; ≤ 1 means
   * commit each message as it arrives.
   */
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
  /** Commit and WAL-sync figures since the previous report (see WalSync). */
  | ({ t: 'stats' } & SyncStats)
  | { t: 'failed'; message: string }
  | { t: 'closed' };
