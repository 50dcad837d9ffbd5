/**
 * Gateway-issued BackendKeyData. A caller never learns the upstream backend's key: it gets
 * a random (pid, secret) pair that maps to the upstream one, so a CancelRequest can only
 * cancel a query of a session it belongs to. One registry per connector instance.
 *
 * With connection workers (`workers:`), a CancelRequest arrives on a new connection that
 * may land in another worker process: the pid then carries the issuing worker's index in
 * its high bits (`owner`), so any worker can tell where to forward it. The secret stays a
 * full 32-bit random value, checked only by the owner.
 */
import { randomInt } from 'node:crypto';

export interface UpstreamKey {
  pid: number;
  secret: number;
}

/**
 * How a connector instance in a worker reaches the others (gateway/src/cluster). Absent:
 * one process, every key is local.
 */
export interface CancelRouting {
  /** This worker's index, 0..MAX_OWNER: written into every pid it issues. */
  readonly index: number;
  /** Hand a CancelRequest for a key another worker issued to that worker (fire and forget). */
  forward(connector: string, owner: number, pid: number, secret: number): void;
  /** Receive the CancelRequests other workers forward for this connector. */
  serve(connector: string, cancel: (pid: number, secret: number) => Promise<void>): void;
}

const MAX_PID = 0x7fffffff;
/** pid bits below the owner index: 2^23 keys per worker; the pid stays a positive int32. */
const OWNER_SHIFT = 23;
export const MAX_OWNER = MAX_PID >>> OWNER_SHIFT;

export class CancelKeys {
  private readonly byPid = new Map<number, { secret: number; upstream: UpstreamKey }>();

  /** `owner`: this worker's index (null: a single process, the whole pid range is random). */
  constructor(private readonly owner: number | null = null) {
    if (owner !== null && !(Number.isInteger(owner) && owner >= 0 && owner <= MAX_OWNER)) throw new RangeError(`cancel key owner ${owner} is outside 0..${MAX_OWNER}`);
  }

  issue(upstream: UpstreamKey): { pid: number; secret: number } {
    let pid: number;
    do pid = this.owner === null ? randomInt(1, MAX_PID) : (this.owner << OWNER_SHIFT) | randomInt(1, 1 << OWNER_SHIFT);
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

  /** The worker that issued `pid`, when it was not this one (null: look it up here). */
  foreignOwner(pid: number): number | null {
    if (this.owner === null || pid <= 0) return null;
    const owner = pid >>> OWNER_SHIFT;
    return owner === this.owner ? null : owner;
  }

  get size(): number {
    return this.byPid.size;
  }
}
