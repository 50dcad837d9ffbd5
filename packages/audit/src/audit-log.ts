/**
 * The main-thread face of the audit log. It never touches disk: append() queues the event,
 * one setImmediate per event-loop turn posts the whole turn's events to the writer worker
 * as one message, and the worker's ack settles the promises.
 */
import { Worker } from 'node:worker_threads';
import { silentLogger, type AuditEventInput, type AuditSink, type GatehouseError, type Logger } from '@gatehouse/core';
import { validKeyName } from './note.js';
import type { FromWorker, ToWorker, WriterConfig } from './protocol.js';

export interface AuditLogOptions {
  dataDir: string;
  durability: 'strict' | 'batched';
  windowMs: number;
  checkpointIntervalSec: number;
  origin: string;
  /** Signing key name; default: origin. */
  keyName?: string;
  logger?: Logger;
  /** Appends waiting for the writer beyond this are refused (bounded memory). Default 100,000. */
  maxPending?: number;
  /** A batch not acknowledged within this long means the writer is stuck: fail closed. Default 30,000 ms. */
  stallTimeoutMs?: number;
}

export interface AuditLog extends AuditSink {
  /** Always there (optional only in AuditSink): see the implementation below. */
  appendDetached(event: AuditEventInput): void;
  /** Note verifier key text: `<name>+<hex key id>+<base64(0x01 || pubkey)>`. */
  readonly verifierKey: string;
  /** The newest signed checkpoint (C2SP signed-note text). */
  latestCheckpoint(): Promise<string | null>;
  /** Events accepted so far (strict: committed). */
  size(): Promise<number>;
  /** Flushes pending events, signs a final checkpoint, stops the worker. */
  close(): Promise<void>;
  /** The writer's commit and fsync figures since the log opened (metrics; reported once a second). */
  stats(): AuditStats;
  /** Called with each fsync latency (seconds) as the writer reports it (a metrics histogram). */
  onSyncLatency: ((seconds: number) => void) | null;
}

export interface AuditStats {
  commits: number;
  events: number;
  syncs: number;
  syncSeconds: number;
}

/** What append() rejects with; `code` is always `audit.unavailable` or `audit.rejected`. */
export class AuditError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'AuditError';
  }
}

interface Batch {
  id: number;
  events: AuditEventInput[];
  resolves: Array<(seq: number) => void>;
  rejects: Array<(e: Error) => void>;
  postedAt: number;
}

const OPEN_TIMEOUT_MS = 30_000;
/**
 * batched: appends gather on the main thread for most of the durability window (up to
 * MAX_GATHER_MS) before one message to the writer, which commits it at once when the rest of
 * the window is that short (decision 0105): one message, one commit and one fsync per
 * gathering, so the writer thread wakes twice per window instead of once per event — on a
 * shared machine each wake-up of a thread costs more CPU than the event's own work.
 */
const batchedPostMs = (windowMs: number) => Math.min(MAX_GATHER_MS, Math.max(1, windowMs - 1));
/** Beyond a few milliseconds, gathering longer saves nothing measurable and only adds delay. */
const MAX_GATHER_MS = 5;
/** A detached append's outcome is nobody's business but the log's own failure state. */
const IGNORE = (): void => {};
const CLOSE_TIMEOUT_MS = 30_000;

function newBatch(id: number): Batch {
  return { id, events: [], resolves: [], rejects: [], postedAt: 0 };
}

class WorkerAuditLog implements AuditLog {
  failure: GatehouseError | null = null;
  verifierKey = '';
  private checkpoint: string | null = null;
  private nextId = 1;
  private cur: Batch = newBatch(0);
  private inflight: Batch[] = [];
  private pending = 0;
  private flushScheduled = false;
  private closing = false;
  private readonly sizeWaiters = new Map<number, { resolve: (n: number) => void; reject: (e: Error) => void }>();
  private readonly watchdog: NodeJS.Timeout;
  private readonly flushBound = () => this.flush();
  private exited: Promise<void>;
  private readonly totals: AuditStats = { commits: 0, events: 0, syncs: 0, syncSeconds: 0 };
  onSyncLatency: ((seconds: number) => void) | null = null;

  constructor(
    private readonly worker: Worker,
    readonly durability: 'strict' | 'batched',
    private readonly log: Logger,
    private readonly maxPending: number,
    private readonly stallTimeoutMs: number,
    private readonly postDelayMs: number,
  ) {
    this.exited = new Promise((resolve) => worker.once('exit', () => resolve()));
    worker.on('message', (m: FromWorker) => this.onMessage(m));
    worker.on('error', (e) => this.fail(`audit writer crashed: ${e.message}`));
    worker.on('exit', (code) => {
      if (!this.closing) this.fail(`audit writer exited unexpectedly (code ${code})`);
    });
    this.watchdog = setInterval(() => this.checkStall(), Math.min(1000, stallTimeoutMs));
    this.watchdog.unref();
  }

  /** Resolves once the writer is ready; rejects (and stops it) if it cannot open the store. */
  ready(): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => done(new Error('audit writer did not start in time')), OPEN_TIMEOUT_MS);
      const done = (e?: Error) => {
        clearTimeout(timer);
        this.worker.off('message', onMsg);
        this.worker.off('exit', onExit);
        if (e) {
          this.closing = true;
          void this.worker.terminate();
          clearInterval(this.watchdog);
          reject(e);
        } else resolve();
      };
      const onMsg = (m: FromWorker) => {
        if (m.t === 'ready') done();
        else if (m.t === 'failed') done(new AuditError('audit.unavailable', `audit log cannot open: ${m.message}`));
      };
      const onExit = (code: number) => done(new Error(`audit writer exited during start (code ${code})`));
      this.worker.on('message', onMsg);
      this.worker.on('exit', onExit);
    });
  }

  append(event: AuditEventInput): Promise<number> {
    const refused = this.refusal();
    if (refused) return Promise.reject(refused);
    return new Promise<number>((resolve, reject) => this.enqueue(event, resolve, reject));
  }

  /**
   * `batched` durability: nobody waits for the writer, so no promise is made per event. A
   * write that fails sets `failure` (every later unit is refused); an overload or a closed
   * log is reported the same way, through `failure`.
   */
  appendDetached(event: AuditEventInput): void {
    const refused = this.refusal();
    if (refused) {
      // An event that cannot be taken after its unit was answered is a hole in the trail:
      // fail closed (overload), unless the log is being closed on purpose.
      if (this.closing && !this.failure) this.log.error({ kind: event.kind }, 'audit event after close dropped');
      else if (!this.failure) this.fail(refused.message);
      return;
    }
    this.enqueue(event, IGNORE, IGNORE);
  }

  private refusal(): AuditError | null {
    if (this.failure) return new AuditError(this.failure.code, this.failure.message);
    if (this.closing) return new AuditError('audit.unavailable', 'audit log is closed');
    if (this.pending >= this.maxPending) return new AuditError('audit.unavailable', `audit log overloaded: ${this.pending} appends pending`);
    return null;
  }

  private enqueue(event: AuditEventInput, resolve: (seq: number) => void, reject: (e: Error) => void): void {
    this.pending++;
    const b = this.cur;
    b.events.push(event);
    b.resolves.push(resolve);
    b.rejects.push(reject);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      // strict: post this turn's events now — a caller is waiting on the fsync.
      // batched: nobody waits, so gather (see batchedPostMs); one message and one writer
      // wake-up then carry many events.
      if (this.durability === 'strict') setImmediate(this.flushBound);
      else setTimeout(this.flushBound, this.postDelayMs);
    }
  }

  /** Posts everything appended during this turn as one message. */
  private flush(): void {
    this.flushScheduled = false;
    const b = this.cur;
    if (b.events.length === 0 || this.failure) return;
    this.cur = newBatch(0);
    this.post(b);
  }

  private post(b: Batch): void {
    b.id = this.nextId++;
    b.postedAt = performance.now();
    this.inflight.push(b);
    try {
      this.worker.postMessage({ t: 'append', id: b.id, events: b.events } satisfies ToWorker);
    } catch (e) {
      // Structured clone refused some value (a function, a socket…). Isolate the culprits:
      // post one by one so only the unclonable events fail.
      this.inflight.pop();
      this.nextId--;
      if (b.events.length === 1) {
        this.pending--;
        b.rejects[0](new AuditError('audit.rejected', `event cannot be recorded: ${(e as Error).message}`));
        return;
      }
      for (let i = 0; i < b.events.length; i++) {
        this.post({ id: 0, events: [b.events[i]], resolves: [b.resolves[i]], rejects: [b.rejects[i]], postedAt: 0 });
      }
    }
  }

  private onMessage(m: FromWorker): void {
    switch (m.t) {
      case 'ack':
        return this.onAck(m);
      case 'checkpoint':
        this.checkpoint = m.note;
        return;
      case 'size': {
        const w = this.sizeWaiters.get(m.id);
        this.sizeWaiters.delete(m.id);
        w?.resolve(m.size);
        return;
      }
      case 'failed':
        return this.fail(`audit store failed: ${m.message}`);
      case 'ready':
        this.verifierKey = m.verifierKey;
        this.checkpoint = m.checkpoint;
        return;
      case 'stats': {
        const t = this.totals;
        t.commits += m.commits;
        t.events += m.events;
        t.syncs += m.syncs;
        t.syncSeconds += m.syncSeconds;
        if (this.onSyncLatency) for (const l of m.latencies) this.onSyncLatency(l);
        return;
      }
      case 'closed':
        return;
    }
  }

  stats(): AuditStats {
    return { ...this.totals };
  }

  private onAck(m: Extract<FromWorker, { t: 'ack' }>): void {
    const b = this.inflight.shift();
    if (!b || b.id !== m.id) return this.fail(`audit writer acknowledged batch ${m.id} out of order`);
    this.pending -= b.events.length;
    let seq = m.firstSeq;
    let badIdx = 0;
    const bad = m.bad;
    for (let i = 0; i < b.resolves.length; i++) {
      if (bad && badIdx < bad.length && bad[badIdx][0] === i) {
        b.rejects[i](new AuditError('audit.rejected', `event refused: ${bad[badIdx][1]}`));
        badIdx++;
      } else {
        b.resolves[i](seq++);
      }
    }
  }

  private checkStall(): void {
    const oldest = this.inflight[0];
    if (oldest && performance.now() - oldest.postedAt > this.stallTimeoutMs) {
      this.fail(`audit writer has not acknowledged a batch for over ${this.stallTimeoutMs} ms`);
    }
  }

  /** Fail closed, once and for good: every waiting and future append rejects. */
  private fail(message: string): void {
    if (this.failure) return;
    this.failure = { code: 'audit.unavailable', message };
    this.log.error({ code: 'audit.unavailable', err: message }, 'AUDIT LOG UNAVAILABLE: refusing all audited work until restarted');
    const e = new AuditError('audit.unavailable', message);
    for (const b of this.inflight) for (const r of b.rejects) r(e);
    for (const r of this.cur.rejects) r(e);
    this.inflight = [];
    this.cur = newBatch(0);
    this.pending = 0;
    for (const w of this.sizeWaiters.values()) w.reject(e);
    this.sizeWaiters.clear();
    clearInterval(this.watchdog);
    if (!this.closing) {
      this.closing = true;
      void this.worker.terminate();
    }
  }

  latestCheckpoint(): Promise<string | null> {
    return Promise.resolve(this.checkpoint);
  }

  size(): Promise<number> {
    if (this.failure) return Promise.reject(new AuditError(this.failure.code, this.failure.message));
    if (this.closing) return Promise.reject(new AuditError('audit.unavailable', 'audit log is closed'));
    this.flush();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.sizeWaiters.set(id, { resolve, reject });
      this.worker.postMessage({ t: 'size', id } satisfies ToWorker);
    });
  }

  async close(): Promise<void> {
    if (this.closing) {
      await this.exited;
      return;
    }
    this.flush();
    this.closing = true;
    this.worker.postMessage({ t: 'close' } satisfies ToWorker);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), CLOSE_TIMEOUT_MS);
    });
    const late = await Promise.race([this.exited.then(() => false), timedOut]);
    clearTimeout(timer);
    clearInterval(this.watchdog);
    if (late) {
      this.fail('audit writer did not close in time');
      await this.worker.terminate();
    }
    // Anything still unacknowledged was never confirmed: say so rather than hang.
    if (this.inflight.length > 0) this.fail('audit writer stopped before acknowledging every event');
  }
}

/**
 * The writer is plain compiled JS: it inherits flags (source maps, --cpu-prof) but not
 * module loaders or preloads, which it does not need and which can cost seconds per start
 * (e.g. a TypeScript loader under a test runner), nor process-wide V8 flags a worker refuses
 * (--perf-basic-prof: the whole process is profiled already).
 */
function writerExecArgv(): string[] {
  const out: string[] = [];
  const argv = process.execArgv;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (/^--(import|require|loader|experimental-loader)$/.test(a) || a === '-r') i++;
    else if (!/^--(import|require|loader|experimental-loader)=/.test(a) && !/^--perf-/.test(a)) out.push(a);
  }
  return out;
}

export async function openAuditLog(opts: AuditLogOptions): Promise<AuditLog> {
  const keyName = opts.keyName ?? opts.origin;
  if (!opts.origin || /[\n\r]/.test(opts.origin)) throw new Error('audit origin must be one non-empty line');
  if (!validKeyName(keyName)) throw new Error(`audit key name "${keyName}" must be non-empty without spaces or '+'`);
  if (!(opts.windowMs >= 1)) throw new Error('audit windowMs must be ≥ 1');
  if (!(opts.checkpointIntervalSec >= 1)) throw new Error('audit checkpointIntervalSec must be ≥ 1');
  const cfg: WriterConfig = {
    dataDir: opts.dataDir,
    durability: opts.durability,
    // The main thread gathers for part of the window; the writer commits within the rest.
    windowMs: opts.durability === 'batched' ? opts.windowMs - batchedPostMs(opts.windowMs) : opts.windowMs,
    checkpointIntervalSec: opts.checkpointIntervalSec,
    origin: opts.origin,
    keyName,
  };
  const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: cfg, execArgv: writerExecArgv() });
  const log = new WorkerAuditLog(
    worker,
    opts.durability,
    (opts.logger ?? silentLogger).child({ component: 'audit' }),
    opts.maxPending ?? 100_000,
    opts.stallTimeoutMs ?? 30_000,
    batchedPostMs(opts.windowMs),
  );
  await log.ready();
  return log;
}
