/**
 * The primary's side of a worker's audit sink: each batch a worker sends goes into the one
 * audit log. Awaited batches are answered with their sequence numbers once the log has
 * acknowledged every event as the durability promises (strict: fsynced); detached batches
 * (batched durability, nobody waits) are appended without a promise per event, and their
 * receipt is acknowledged in one message per 50 ms, which is all the worker's bound needs
 * (each message wakes the worker).
 */
import type { AuditLog } from '@gatehouse/audit';
import type { AuditEventInput } from '@gatehouse/core';
import type { RefusedEvent, ToWorker } from './messages.js';

/** Receipts of detached batches are coalesced for this long. */
const RECEIPT_DELAY_MS = 50;

export class AuditIntake {
  private receivedUpTo = 0;
  private receiptTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly audit: AuditLog,
    private readonly send: (m: ToWorker) => void,
    /** An append was refused: the log may have failed, tell every worker now rather than at the next poll. */
    private readonly onRefused: () => void,
  ) {}

  batch(id: number, events: AuditEventInput[], detached: boolean): void {
    const failure = this.audit.failure;
    if (failure) return this.send({ t: 'audit-failed', message: failure.message });
    if (detached && this.audit.appendDetached) {
      for (const e of events) this.audit.appendDetached(e);
      this.receivedUpTo = id;
      this.receiptTimer ??= setTimeout(() => this.sendReceipt(), RECEIPT_DELAY_MS);
      return;
    }
    const seqs = new Array<number>(events.length).fill(0);
    const refused: RefusedEvent[] = [];
    void Promise.all(
      events.map((e, i) =>
        this.audit.append(e).then(
          (seq) => {
            seqs[i] = seq;
          },
          (err: Error & { code?: string }) => {
            refused.push([i, err.code ?? 'audit.unavailable', err.message]);
            this.onRefused();
          },
        ),
      ),
    ).then(() => this.send({ t: 'acked', id, seqs, refused: refused.sort((a, b) => a[0] - b[0]) }));
  }

  /** Send any pending receipt now (before a stop, so the worker's flush can finish). */
  flush(): void {
    if (this.receiptTimer) {
      clearTimeout(this.receiptTimer);
      this.sendReceipt();
    }
  }

  private sendReceipt(): void {
    this.receiptTimer = null;
    this.send({ t: 'received', upTo: this.receivedUpTo });
  }
}
