/**
 * The signing keys of one issuer: fetched lazily, cached, refreshed when old, and
 * refetched when a token names a key we do not have — but never more than once per
 * cooldown, whatever the reason (first load, age, unknown kid, earlier failure). That
 * one rule is what stops a stream of tokens with made-up `kid`s from turning the
 * gateway into a load generator against the identity provider.
 *
 * Why not jose's createRemoteJWKSet: it does not rate-limit failed fetches (an
 * unreachable IdP is hit once per token), drops every key the moment cacheMaxAge
 * passes and a refresh fails, and reads bodies unbounded. Key matching (kid, alg, kty,
 * use) is still jose's: createLocalJWKSet.
 */
import { createLocalJWKSet, errors as jose, type JWTVerifyGetKey } from 'jose';
import type { Logger, Result } from '@gatehouse/core';
import { JwksUnavailableError } from './errors.js';
import { fetchJson } from './fetch-json.js';

export interface IssuerKeysOptions {
  issuer: string;
  /** Where the key set lives; called on every fetch so discovery can be retried. */
  locate: () => Promise<Result<URL>>;
  timeoutMs: number;
  /** At most one fetch per this many ms. */
  cooldownMs: number;
  /** Keys older than this are refreshed before use. */
  maxAgeMs: number;
  /** While the IdP is unreachable, keys stay usable this long past maxAgeMs; then fail closed. */
  maxStaleMs: number;
  maxBytes: number;
  now: () => number;
  signal: AbortSignal;
  logger: Logger;
}

type LocalSet = ReturnType<typeof createLocalJWKSet>;

export class IssuerKeys {
  private local: LocalSet | null = null;
  private fetchedAt = Number.NEGATIVE_INFINITY;
  private attemptedAt = Number.NEGATIVE_INFINITY;
  private pending: Promise<boolean> | null = null;

  constructor(private readonly o: IssuerKeysOptions) {}

  /** Key resolver for jose's jwtVerify. */
  readonly resolve: JWTVerifyGetKey = async (header, token) => {
    if (!this.local || this.o.now() - this.fetchedAt >= this.o.maxAgeMs) {
      await this.refresh();
      if (!this.local) throw new JwksUnavailableError('no key set');
      if (this.o.now() - this.fetchedAt >= this.o.maxAgeMs + this.o.maxStaleMs) throw new JwksUnavailableError('key set too old');
    }
    try {
      return await this.local(header, token);
    } catch (e) {
      // Key rotation: the IdP may have published a key after our last fetch.
      if (e instanceof jose.JWKSNoMatchingKey && (await this.refresh())) return this.local(header, token);
      throw e;
    }
  };

  /** Fetch unless one is running (join it) or the cooldown forbids; true when new keys arrived. */
  private refresh(): Promise<boolean> {
    if (this.pending) return this.pending;
    const now = this.o.now();
    if (now - this.attemptedAt < this.o.cooldownMs) return Promise.resolve(false);
    this.attemptedAt = now;
    this.pending = this.fetchKeys().finally(() => {
      this.pending = null;
    });
    return this.pending;
  }

  private async fetchKeys(): Promise<boolean> {
    const { logger, issuer } = this.o;
    const where = await this.o.locate();
    if (!where.ok) {
      logger.warn({ issuer, reason: where.error.message }, 'cannot locate the issuer key set');
      return false;
    }
    const body = await fetchJson(where.value, { timeoutMs: this.o.timeoutMs, maxBytes: this.o.maxBytes, signal: this.o.signal });
    if (!body.ok) {
      logger.warn({ issuer, jwks: where.value.href, reason: body.error.message }, 'key set fetch failed');
      return false;
    }
    let next: LocalSet;
    try {
      next = createLocalJWKSet(body.value as Parameters<typeof createLocalJWKSet>[0]);
    } catch (e) {
      logger.warn({ issuer, jwks: where.value.href, reason: (e as Error).message }, 'key set is malformed');
      return false;
    }
    this.local = next;
    this.fetchedAt = this.o.now();
    logger.info({ issuer, jwks: where.value.href, keys: (body.value as { keys: unknown[] }).keys.length }, 'key set loaded');
    return true;
  }
}
