/**
 * Static development tokens. Only their SHA-256 digests are kept; a presented token is
 * hashed and compared with every digest in constant time (no early exit), so neither
 * the timing nor the position of a match tells anything about a configured token.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { ok, type Identity, type Logger, type Result, type StaticTokenConfig } from '@gatehouse/core';
import { fail } from './errors.js';
import { shapeOf } from './token-shape.js';

export const STATIC_ISSUER = 'static';

interface Entry {
  digest: Buffer;
  identity: Identity;
}

export const sha256 = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

export class StaticTokens {
  private readonly entries: Entry[] = [];

  constructor(tokens: readonly StaticTokenConfig[], logger: Logger) {
    for (const t of tokens) {
      // A dotted token would be routed to JWT verification (and one with spaces refused) before
      // reaching us: it could never match, so say so at start instead of failing silently later.
      if (shapeOf(t.token) !== 'static') {
        logger.error({ subject: t.subject }, 'static token ignored: it must be printable ASCII without dots or spaces');
        continue;
      }
      const groups = Object.freeze([...(t.groups ?? [])]) as string[];
      const identity: Identity = Object.freeze({
        subject: t.subject,
        issuer: STATIC_ISSUER,
        groups,
        claims: Object.freeze({ sub: t.subject, iss: STATIC_ISSUER, groups }),
      });
      this.entries.push({ digest: sha256(t.token), identity });
    }
    if (this.entries.length) logger.warn({ count: this.entries.length }, 'static tokens enabled: for development only');
  }

  get size(): number {
    return this.entries.length;
  }

  verify(token: string): Result<Identity> {
    if (this.entries.length === 0) return fail('auth.malformed', 'token is not a JWT');
    const presented = sha256(token);
    let found: Identity | null = null;
    for (const e of this.entries) {
      if (timingSafeEqual(e.digest, presented) && found === null) found = e.identity;
    }
    return found ? ok(found) : fail('auth.invalid', 'token is not recognised');
  }
}
