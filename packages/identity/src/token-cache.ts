/**
 * Verified tokens, keyed by the SHA-256 of the token (the token itself is never kept),
 * so that a storm of connections presenting one token costs a hash and a map lookup.
 * Bounded LRU (a Map keeps insertion order: re-inserting on a hit moves an entry to the
 * young end, the oldest is evicted first). An entry never outlives the token's `exp`:
 * the clock tolerance of verification is not extended to cached answers.
 */
import type { Identity } from '@gatehouse/core';

interface Entry {
  identity: Identity;
  expiresAt: number;
}

export class TokenCache {
  private readonly map = new Map<string, Entry>();

  constructor(
    private readonly maxEntries: number,
    private readonly now: () => number,
  ) {}

  get size(): number {
    return this.map.size;
  }

  get(key: string): Identity | null {
    const e = this.map.get(key);
    if (!e) return null;
    this.map.delete(key);
    if (this.now() >= e.expiresAt) return null;
    this.map.set(key, e);
    return e.identity;
  }

  set(key: string, identity: Identity, expiresAt: number): void {
    if (this.maxEntries <= 0 || this.now() >= expiresAt) return;
    this.map.delete(key);
    if (this.map.size >= this.maxEntries) {
      const oldest = this.map.keys().next();
      if (!oldest.done) this.map.delete(oldest.value);
    }
    this.map.set(key, { identity, expiresAt });
  }

  clear(): void {
    this.map.clear();
  }
}
