/**
 * Failed logins per source address: after `max` failures within `windowMs`, that address is
 * refused (without any key or token being checked) until the oldest of those failures is
 * older than the window; refused attempts are not counted. Memory is bounded: at most `maxAddresses` addresses are tracked, the
 * least recently failing dropped first.
 */
export class FailureLimiter {
  private readonly failures = new Map<string, number[]>();

  constructor(
    private readonly max: number,
    private readonly windowMs: number,
    private readonly maxAddresses = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** True while `address` is refused. */
  blocked(address: string): boolean {
    const list = this.recent(address);
    return list !== null && list.length >= this.max;
  }

  /** Count one failure; returns true when this failure made the address blocked. */
  fail(address: string): boolean {
    const t = this.now();
    const list = this.recent(address) ?? [];
    list.push(t);
    if (list.length > this.max) list.splice(0, list.length - this.max);
    // Re-insert: Map order is the eviction order (oldest failure first).
    this.failures.delete(address);
    this.failures.set(address, list);
    if (this.failures.size > this.maxAddresses) this.failures.delete(this.failures.keys().next().value as string);
    return list.length === this.max;
  }

  private recent(address: string): number[] | null {
    const list = this.failures.get(address);
    if (!list) return null;
    const since = this.now() - this.windowMs;
    while (list.length && list[0] <= since) list.shift();
    if (list.length === 0) {
      this.failures.delete(address);
      return null;
    }
    return list;
  }
}
