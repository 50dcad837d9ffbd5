/**
 * A connection worker's AuditSink: events go to the primary, which owns the one audit log
 * (one sequence, one hash chain per gateway_id). Appends made during one event-loop turn
 * travel as one IPC message; strict appends resolve when the primary's log acknowledges
 * them durable. Everything is bounded: events not yet acknowledged (a stalled primary makes
 * this refuse, not grow), and how long the oldest may wait. Any failure is final — like the
 * audit log itself, the sink then refuses all work until the gateway is restarted.
 */
import type { AuditEventInput, AuditSink, GatehouseError, Logger } from '@gatehouse/core';
import type { FromWorker, RefusedEvent } from './messages.js';

export interface IpcAuditSinkOptions {
  durability: 'strict' | 'batched';
  /** Post one message to the primary; false or a throw: the channel is gone. */
  send(m: Extract<FromWorker, { t: 'audit' }>): boolean;
  logger: Logger;
  /** Events sent or gathered and not yet acknowledged, at most (default 50,000). */
  maxPending?: number;
  /** The oldest unacknowledged batch may wait this long before the sink fails (default 15,000 ms). */
  stallTimeoutMs?: number;
  /**
   * `batched` only: gather appends for this long before one message (0: per event-loop turn).
   * Strict appends always go at the end of the turn: a caller waits on them.
   */
  gatherMs?: number;
}

/**
 * Split of a `batched` window between the worker and the primary: a worker gathers for part
 * of it (one IPC message, one wake-up of the primary, per gathering instead of per turn —
 * on a busy host a wake-up costs more than the events it carries), and the primary's log is
 * opened with the rest, so an event is still fsynced within `window_ms` of its append (plus
 * the IPC hop, tens of microseconds).
 */
export function splitWindow(windowMs: number): { workerMs: number; logMs: number } {
  // The log needs 2 ms of its own: 1 to gather what several workers sent, 1 to commit.
  const workerMs = Math.max(0, Math.min(MAX_WORKER_GATHER_MS, windowMs - 2));
  return { workerMs, logMs: windowMs - workerMs };
}

/** Beyond a few milliseconds a longer gathering saves nothing measurable (as in the log itself). */
const MAX_WORKER_GATHER_MS = 4;

interface Waiter {
  resolve(seq: number): void;
  reject(e: Error): void;
}

interface Batch {
  events: AuditEventInput[];
  /** One per event of `events`; null where nobody awaits it (appendDetached). */
  waiters: (Waiter | null)[];
  awaited: number;
  postedAt: number;
}

/** What append() rejects with; `code` is `audit.unavailable` or `audit.rejected`, as the log's own. */
export class SinkError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'AuditError';
  }
}

const newBatch = (): Batch => ({ events: [], waiters: [], awaited: 0, postedAt: 0 });

export class IpcAuditSink implements AuditSink {
  failure: GatehouseError | null = null;
  readonly durability: 'strict' | 'batched';
  private cur = newBatch();
  private readonly inflight = new Map<number, Batch>();
  private nextId = 1;
  private pending = 0;
  private scheduled = false;
  private closed = false;
  private readonly maxPending: number;
  private readonly stallTimeoutMs: number;
  private readonly gatherMs: number;
  private readonly watchdog: NodeJS.Timeout;
  private readonly flushBound = () => this.flush();
  private drained: (() => void) | null = null;

  constructor(private readonly o: IpcAuditSinkOptions) {
    this.durability = o.durability;
    this.maxPending = o.maxPending ?? 50_000;
    this.stallTimeoutMs = o.stallTimeoutMs ?? 15_000;
    this.gatherMs = o.durability === 'batched' ? (o.gatherMs ?? 0) : 0;
    this.watchdog = setInterval(() => this.checkStall(), Math.min(1000, this.stallTimeoutMs));
    this.watchdog.unref();
  }

  append(event: AuditEventInput): Promise<number> {
    const refused = this.refusal();
    if (refused) return Promise.reject(refused);
    return new Promise<number>((resolve, reject) => this.enqueue(event, { resolve, reject }));
  }

  appendDetached(event: AuditEventInput): void {
    const refused = this.refusal();
    if (refused) {
      // The unit was answered already: an event that cannot be taken is a hole in the
      // trail, so refuse everything from now on (an overload, a closed channel).
      if (!this.failure) this.fail(refused.message);
      return;
    }
    this.enqueue(event, null);
  }

  /** Settle an awaited batch with the primary's answer. */
  acked(id: number, seqs: number[], refused: RefusedEvent[]): void {
    const b = this.inflight.get(id);
    if (!b) return;
    this.inflight.delete(id);
    this.pending -= b.events.length;
    const bad = new Map(refused.map(([i, code, message]) => [i, { code, message }]));
    for (let i = 0; i < b.waiters.length; i++) {
      const r = bad.get(i);
      if (r) {
        b.waiters[i]?.reject(new SinkError(r.code, r.message));
        // The log itself is down (not one odd event): fail closed here too, at once.
        if (r.code === 'audit.unavailable') this.fail(r.message);
      } else b.waiters[i]?.resolve(seqs[i]);
    }
    this.checkDrained();
  }

  /** Detached batches up to `upTo` reached the primary's log. */
  received(upTo: number): void {
    for (const [id, b] of this.inflight) {
      if (id > upTo) break;
      if (b.awaited > 0) continue;
      this.inflight.delete(id);
      this.pending -= b.events.length;
    }
    this.checkDrained();
  }

  /** The primary's audit log failed (or the primary is gone): refuse everything, for good. */
  fail(message: string): void {
    if (this.failure) return;
    this.failure = { code: 'audit.unavailable', message };
    this.o.logger.error({ code: 'audit.unavailable', err: message }, 'AUDIT LOG UNAVAILABLE: this worker refuses all audited work until restarted');
    const e = new SinkError('audit.unavailable', message);
    for (const b of this.inflight.values()) for (const w of b.waiters) w?.reject(e);
    for (const w of this.cur.waiters) w?.reject(e);
    this.inflight.clear();
    this.cur = newBatch();
    this.pending = 0;
    clearInterval(this.watchdog);
    this.checkDrained();
  }

  /**
   * Post what is gathered and wait (up to `timeoutMs`) until the primary has acknowledged
   * everything sent; then refuse further appends. False when it did not settle in time, or
   * the sink had failed (what was pending was refused, not recorded).
   */
  async close(timeoutMs: number): Promise<boolean> {
    this.flush();
    this.closed = true;
    clearInterval(this.watchdog);
    if (this.inflight.size === 0) return this.failure === null;
    let timer: NodeJS.Timeout | undefined;
    const settled = await Promise.race([
      new Promise<boolean>((resolve) => (this.drained = () => resolve(true))),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs))),
    ]);
    clearTimeout(timer);
    return settled && this.failure === null;
  }

  private refusal(): SinkError | null {
    if (this.failure) return new SinkError(this.failure.code, this.failure.message);
    if (this.closed) return new SinkError('audit.unavailable', 'audit sink is closed (worker stopping)');
    if (this.pending >= this.maxPending) return new SinkError('audit.unavailable', `audit log overloaded: ${this.pending} events not acknowledged by the primary`);
    return null;
  }

  private enqueue(event: AuditEventInput, waiter: Waiter | null): void {
    this.pending++;
    this.cur.events.push(event);
    this.cur.waiters.push(waiter);
    if (waiter) this.cur.awaited++;
    if (!this.scheduled) {
      this.scheduled = true;
      // One message per turn (every append of this turn rides along), or per gathering.
      if (this.gatherMs > 0) setTimeout(this.flushBound, this.gatherMs);
      else setImmediate(this.flushBound);
    }
  }

  private flush(): void {
    this.scheduled = false;
    const b = this.cur;
    if (b.events.length === 0 || this.failure) return;
    this.cur = newBatch();
    const id = this.nextId++;
    b.postedAt = performance.now();
    this.inflight.set(id, b);
    // send() answering false means "backlogged" (still queued): the bound on pending events
    // and the stall watchdog cover that; a closed channel throws or ends in 'disconnect'.
    try {
      this.o.send({ t: 'audit', id, events: b.events, detached: b.awaited === 0 });
    } catch (e) {
      this.fail(`cannot reach the primary's audit log: ${(e as Error).message}`);
    }
  }

  private checkStall(): void {
    const oldest = this.inflight.values().next();
    if (!oldest.done && performance.now() - oldest.value.postedAt > this.stallTimeoutMs) {
      this.fail(`the primary has not acknowledged audit events for over ${this.stallTimeoutMs} ms`);
    }
  }

  private checkDrained(): void {
    if (this.inflight.size === 0 && this.drained) {
      const d = this.drained;
      this.drained = null;
      d();
    }
  }
}
