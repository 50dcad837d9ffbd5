/**
 * Console sign-in sessions, in memory: a random 256-bit id in the cookie, only its SHA-256
 * kept here (a heap dump does not hand out live cookies). Bounded in count (the least
 * recently used is dropped when full), with an idle and an absolute timeout. A gateway
 * restart signs everyone out — acceptable for an operator console, and nothing to leak on disk.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Identity } from '@gatehouse/core';

export interface ConsoleSession {
  identity: Identity;
  roles: string[];
  /** Sent by the UI in X-CSRF-Token on every state-changing request. */
  csrf: string;
  created: number;
  lastSeen: number;
}

export interface SessionLimits {
  max: number;
  idleMs: number;
  absoluteMs: number;
}

export const DEFAULT_LIMITS: SessionLimits = { max: 1000, idleMs: 30 * 60_000, absoluteMs: 12 * 3600_000 };

const ID = /^[A-Za-z0-9_-]{43}$/;
const digest = (id: string) => createHash('sha256').update(id).digest('base64url');

export class SessionStore {
  // Map iteration order is insertion order; touching re-inserts, so the first key is the least recently used.
  private readonly byHash = new Map<string, ConsoleSession>();

  constructor(
    private readonly limits: SessionLimits = DEFAULT_LIMITS,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.byHash.size;
  }

  /** A new session; returns the cookie value (never stored). */
  create(identity: Identity, roles: string[]): { id: string; session: ConsoleSession } {
    while (this.byHash.size >= this.limits.max) this.byHash.delete(this.byHash.keys().next().value!);
    const id = randomBytes(32).toString('base64url');
    const t = this.now();
    const session: ConsoleSession = { identity, roles, csrf: randomBytes(32).toString('base64url'), created: t, lastSeen: t };
    this.byHash.set(digest(id), session);
    return { id, session };
  }

  /** The live session of a cookie value, its idle clock reset; expired ones are removed. */
  get(id: string | undefined): ConsoleSession | null {
    if (!id || !ID.test(id)) return null;
    const h = digest(id);
    const s = this.byHash.get(h);
    if (!s) return null;
    const t = this.now();
    if (t - s.lastSeen > this.limits.idleMs || t - s.created > this.limits.absoluteMs) {
      this.byHash.delete(h);
      return null;
    }
    s.lastSeen = t;
    this.byHash.delete(h);
    this.byHash.set(h, s);
    return s;
  }

  delete(id: string | undefined): void {
    if (id && ID.test(id)) this.byHash.delete(digest(id));
  }
}

/** Constant-time comparison of a presented CSRF token with the session's. */
export function csrfMatches(session: ConsoleSession, presented: string | undefined): boolean {
  if (!presented) return false;
  const a = Buffer.from(session.csrf);
  const b = Buffer.from(presented);
  return a.length === b.length && timingSafeEqual(a, b);
}
