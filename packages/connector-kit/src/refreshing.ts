/**
 * A snapshot of something upstream (a database catalog) kept fresh the one way every
 * connector needs: loaded on first use, reloaded after `invalidate()` (DDL passed through the
 * gateway, a schema-change error), when the connector meets something it does not know (at
 * most every `minReloadMs`), and at least every `ttlMs`. One load at a time, shared by every
 * waiter. A load that fails leaves the snapshot stale and rejects its waiters, so the caller
 * can fail closed.
 */
import type { Logger } from '@gatehouse/core';

export interface RefreshingOptions {
  /** Changes made around the gateway are picked up within this time. */
  ttlMs: number;
  /** `refreshForUnknown` reloads at most this often. */
  minReloadMs: number;
  log: Logger;
  /** What the snapshot is, for the log line when a load fails. */
  what: string;
}

export class RefreshingSnapshot<T> {
  private snap: T | null = null;
  private loading: Promise<T> | null = null;
  private loadedAt = 0;
  private stale = false;
  private version_ = 0;

  constructor(
    /** Reads a fresh snapshot; `version` increases with every load (per-session caches key on it). */
    private readonly fetch: (version: number) => Promise<T>,
    private readonly o: RefreshingOptions,
  ) {}

  /** The current snapshot, or null before the first load. Synchronous: used while deciding. */
  get current(): T | null {
    return this.snap;
  }

  /** True when a caller should await `ready()` before deciding (never loaded, invalidated, loading, TTL passed). */
  get needsLoad(): boolean {
    return this.snap === null || this.stale || this.loading !== null || Date.now() - this.loadedAt > this.o.ttlMs;
  }

  /** A fresh-enough snapshot; loads (once, shared by all waiters) when needed. Rejects if the load fails. */
  ready(): Promise<T> {
    if (this.snap !== null && !this.needsLoad) return Promise.resolve(this.snap);
    return this.load();
  }

  /** The next decision waits for a reload. */
  invalidate(): void {
    this.stale = true;
  }

  /** Something unknown was met: reload unless that happened very recently (null then). */
  refreshForUnknown(): Promise<T> | null {
    if (this.loading) return this.loading;
    if (Date.now() - this.loadedAt < this.o.minReloadMs) return null;
    return this.load();
  }

  private load(): Promise<T> {
    if (this.loading) return this.loading;
    this.stale = false;
    const p = this.fetch(++this.version_).then(
      (snap) => {
        this.snap = snap;
        this.loadedAt = Date.now();
        this.loading = null;
        return snap;
      },
      (e: Error) => {
        this.loading = null;
        this.stale = true;
        this.o.log.error({ err: e.message }, `cannot read the upstream ${this.o.what}; masked callers are refused`);
        throw e;
      },
    );
    this.loading = p;
    return p;
  }
}
