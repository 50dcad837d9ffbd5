/**
 * Gateway-issued BackendKeyData. A caller never learns the upstream backend's key: it gets
 * a random (pid, secret) pair that maps to the upstream one, so a CancelRequest can only
 * cancel a query of a session it belongs to. One registry per connector instance.
 */
import { randomInt } from 'node:crypto';

export interface UpstreamKey {
  pid: number;
  secret: number;
}

const MAX_PID = 0x7fffffff;

export class CancelKeys {
  private readonly byPid = new Map<number, { secret: number; upstream: UpstreamKey }>();

  issue(upstream: UpstreamKey): { pid: number; secret: number } {
    let pid: number;
    do pid = randomInt(1, MAX_PID);
    while (this.byPid.has(pid));
    const secret = randomInt(-0x80000000, 0x7fffffff);
    this.byPid.set(pid, { secret, upstream });
    return { pid, secret };
  }

  release(pid: number): void {
    this.byPid.delete(pid);
  }

  /** The upstream key for a caller's (pid, secret), or null when it does not match. */
  lookup(pid: number, secret: number): UpstreamKey | null {
    const e = this.byPid.get(pid);
    // A 32-bit compare is constant time already; the map lookup leaks only pid existence.
    return e && e.secret === secret ? e.upstream : null;
  }

  get size(): number {
    return this.byPid.size;
  }
}
