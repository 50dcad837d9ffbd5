/**
 * The durability step of the writer's group commit. SQLite runs with `synchronous = NORMAL`,
 * so a COMMIT writes its WAL frames without waiting for the disk; right after each commit the
 * writer calls `committed()`, which fdatasyncs the WAL on the writer's own thread and only
 * then releases what the commit promised (the acks of a strict batch, a signed checkpoint)
 * and advances the durable mark. Appends that arrive during the sync wait in the message port
 * and go into the next commit together — that is the group commit. Decision 0105: a sync on
 * the thread pool, pipelined with the next commit, was measured and lost (a hand-off and two
 * wake-ups per commit cost more CPU than the overlap won).
 *
 * Why the WAL alone: in WAL mode a transaction is durable once its frames are; SQLite itself
 * syncs the WAL before every checkpoint copies it into the database file (and the database
 * after), also under NORMAL. fsync is per file, not per descriptor, so our own read-only
 * descriptor of the WAL flushes the frames SQLite wrote through its own.
 */
import { closeSync, existsSync, fdatasyncSync, openSync } from 'node:fs';

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
  private durableSeq = 0;
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

  /**
   * A transaction of `events` events, the last with seq `lastSeq`, was committed: sync the WAL,
   * then release `items`. On a failed sync nothing is released and `failed` is told.
   */
  committed(events: number, items: T[], lastSeq: number): void {
    this.stats.commits++;
    this.stats.events += events;
    const fd = this.open();
    if (fd >= 0) {
      const t0 = performance.now();
      try {
        fdatasyncSync(fd);
      } catch (e) {
        this.failed(e as Error);
        return;
      }
      const s = (performance.now() - t0) / 1000;
      this.stats.syncs++;
      this.stats.syncSeconds += s;
      if (this.stats.latencies.length < MAX_SAMPLES) this.stats.latencies.push(s);
    }
    // (No WAL file yet means nothing was ever written to one: nothing to sync.)
    // The mark first: whoever an ack wakes may look at it.
    if (lastSeq > this.durableSeq) {
      this.durableSeq = lastSeq;
      this.durable(lastSeq);
    }
    if (items.length) this.release(items);
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

  /** The WAL exists from the first commit on; SQLite keeps the same file until it closes. */
  private open(): number {
    if (this.fd < 0 && existsSync(this.walPath)) this.fd = openSync(this.walPath, 'r');
    return this.fd;
  }
}
