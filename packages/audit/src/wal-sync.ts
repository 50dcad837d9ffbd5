/**
 * Pipelined group commit for the writer thread. SQLite runs with `synchronous = NORMAL`, so a
 * COMMIT writes its WAL frames without waiting for the disk; durability comes from here: one
 * `fdatasync` of the WAL file at a time, on libuv's thread pool, while the writer goes on
 * inserting and committing the next transactions. What a commit promised (the acks of a
 * strict batch, a signed checkpoint) is released only when a sync that *started after* that
 * commit has completed — so nothing is acknowledged before it is on disk, and the writer
 * thread never blocks on the disk. Decision 0105.
 *
 * Why the WAL alone: in WAL mode a transaction is durable once its frames are; SQLite itself
 * syncs the WAL before every checkpoint copies it into the database file (and the database
 * after), also under NORMAL. fsync is per file, not per descriptor, so our own read-only
 * descriptor of the WAL flushes the frames SQLite wrote through its own.
 */
import { closeSync, existsSync, fdatasync, fdatasyncSync, openSync } from 'node:fs';

/** Latencies kept between two `takeStats()` calls (at most; older ones are only counted). */
const MAX_SAMPLES = 4096;

export interface SyncStats {
  commits: number;
  events: number;
  syncs: number;
  syncSeconds: number;
  /** Sync latencies in seconds since the last takeStats(), capped at MAX_SAMPLES. */
  latencies: number[];
}

export class WalSync<T> {
  private fd = -1;
  private running = false;
  /** Something was committed since the running sync started. */
  private dirty = false;
  /** Released by the next sync to start. */
  private waiting: T[] = [];
  /** Highest seq committed so far, and the highest a completed sync covers. */
  private committedSeq = 0;
  private durableSeq = 0;
  private idleWaiters: Array<() => void> = [];
  private stats: SyncStats = { commits: 0, events: 0, syncs: 0, syncSeconds: 0, latencies: [] };

  constructor(
    private readonly walPath: string,
    /** Called with what a completed sync made durable, in commit order. */
    private readonly release: (items: T[]) => void,
    /** A sync failed: the disk can no longer be trusted (the writer fails closed). */
    private readonly failed: (e: Error) => void,
    /** Events up to this seq are on disk (called after each sync that covered new ones). */
    private readonly durable: (seq: number) => void = () => {},
  ) {}

  /** A transaction of `events` events, the last with seq `lastSeq`, was committed; `items` wait for it to be durable. */
  committed(events: number, items: readonly T[], lastSeq: number): void {
    this.committedSeq = Math.max(this.committedSeq, lastSeq);
    this.stats.commits++;
    this.stats.events += events;
    for (const i of items) this.waiting.push(i);
    this.dirty = true;
    if (!this.running) this.start();
  }

  /** Everything committed so far made durable before returning (start-up and close). */
  syncNow(): void {
    if (this.running) throw new Error('WalSync.syncNow() while a sync is running: await idle() first');
    if (!this.dirty) return;
    const fd = this.open();
    const upTo = this.committedSeq;
    const items = this.take();
    if (fd >= 0) fdatasyncSync(fd);
    this.advance(upTo);
    this.release(items);
  }

  private advance(upTo: number): void {
    if (upTo <= this.durableSeq) return;
    this.durableSeq = upTo;
    this.durable(upTo);
  }

  /** Resolves once no sync is running (pending items may remain; see syncNow). */
  idle(): Promise<void> {
    return this.running ? new Promise((resolve) => this.idleWaiters.push(resolve)) : Promise.resolve();
  }

  takeStats(): SyncStats {
    const s = this.stats;
    this.stats = { commits: 0, events: 0, syncs: 0, syncSeconds: 0, latencies: [] };
    return s;
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }

  private take(): T[] {
    const items = this.waiting;
    this.waiting = [];
    this.dirty = false;
    return items;
  }

  /** The WAL exists from the first commit on; SQLite keeps the same file until it closes. */
  private open(): number {
    if (this.fd < 0 && existsSync(this.walPath)) this.fd = openSync(this.walPath, 'r');
    return this.fd;
  }

  private start(): void {
    const fd = this.open();
    const upTo = this.committedSeq;
    const items = this.take();
    if (fd < 0) {
      // Nothing was ever written to a WAL (cannot happen after a commit): nothing to sync.
      this.advance(upTo);
      this.release(items);
      return;
    }
    this.running = true;
    const t0 = performance.now();
    fdatasync(fd, (e) => {
      this.running = false;
      if (e) {
        this.failed(e);
        this.wakeIdle();
        return;
      }
      const s = (performance.now() - t0) / 1000;
      this.stats.syncs++;
      this.stats.syncSeconds += s;
      if (this.stats.latencies.length < MAX_SAMPLES) this.stats.latencies.push(s);
      // The mark first: whoever an ack wakes may look at it.
      this.advance(upTo);
      this.release(items);
      if (this.dirty) this.start();
      else this.wakeIdle();
    });
  }

  private wakeIdle(): void {
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const f of w) f();
  }
}
