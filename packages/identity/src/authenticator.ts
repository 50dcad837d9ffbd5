/**
 * The caller authenticator: a token in, an Identity or a coded reason out.
 * Routing is by shape (JWT vs static), then for a JWT by its unverified `iss` claim:
 * only the keys of that one configured issuer are ever tried.
 */
import { createHash } from 'node:crypto';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import {
  ok,
  silentLogger,
  type Authenticator,
  type ClientCertificate,
  type GatehouseConfig,
  type Identity,
  type Logger,
  type Result,
  type SshKeyCredential,
} from '@gatehouse/core';
import { CertificateIdentities } from './certificates.js';
import { fail } from './errors.js';
import { OidcIssuer } from './oidc-issuer.js';
import { SshKeyIdentities } from './ssh-identities.js';
import { StaticTokens } from './static-tokens.js';
import { TokenCache } from './token-cache.js';
import { shapeOf } from './token-shape.js';

export type IdentityConfig = GatehouseConfig['identity'];

export interface TokenAuthenticator extends Authenticator {
  authenticateCertificate(cert: ClientCertificate): Promise<Result<Identity>>;
  authenticateSshKey(key: SshKeyCredential): Promise<Result<Identity>>;
  /** Abort pending key fetches and drop cached identities. Later calls fail. */
  close(): void;
}

export interface AuthenticatorOptions {
  logger?: Logger;
  /** Deadline of one discovery or JWKS fetch (connect + body), ms. Default 5000. */
  fetchTimeoutMs?: number;
  /** At most one JWKS fetch per issuer per this many ms (unknown kid, refresh, retry). Default 30000. */
  jwksCooldownMs?: number;
  /** Key sets older than this are refreshed before use, ms. Default 600000 (10 min). */
  jwksMaxAgeMs?: number;
  /** How long past max age old keys still serve while the IdP is unreachable, ms. Default 3600000. */
  jwksMaxStaleMs?: number;
  /** Verified-token cache size (entries). Default 10000; 0 disables the cache. */
  cacheEntries?: number;
  /** Clock in ms since the epoch (tests move time without sleeping). Default Date.now. */
  now?: () => number;
}

export function createAuthenticator(config: IdentityConfig, opts: AuthenticatorOptions = {}): TokenAuthenticator {
  const logger = opts.logger ?? silentLogger;
  const now = opts.now ?? Date.now;
  const closer = new AbortController();
  const cache = new TokenCache(opts.cacheEntries ?? 10_000, now);
  const statics = new StaticTokens(config.static_tokens ?? [], logger);
  const certificates = new CertificateIdentities(config.certificates ?? []);
  const sshKeys = new SshKeyIdentities(config.ssh_keys ?? [], config.ssh_user_ca ?? [], logger);
  const inflight = new Map<string, Promise<Result<Identity>>>();
  const issuers = new Map<string, OidcIssuer>();
  for (const cfg of config.oidc ?? []) {
    if (issuers.has(cfg.issuer)) {
      logger.error({ issuer: cfg.issuer }, 'issuer configured twice; the first entry is used');
      continue;
    }
    issuers.set(
      cfg.issuer,
      new OidcIssuer(cfg, {
        timeoutMs: opts.fetchTimeoutMs ?? 5_000,
        cooldownMs: opts.jwksCooldownMs ?? 30_000,
        maxAgeMs: opts.jwksMaxAgeMs ?? 600_000,
        maxStaleMs: opts.jwksMaxStaleMs ?? 3_600_000,
        maxJwksBytes: 512 * 1024,
        now,
        signal: closer.signal,
        logger,
      }),
    );
  }

  async function verifyJwt(token: string, cacheKey: string): Promise<Result<Identity>> {
    let iss: unknown;
    let alg: unknown;
    try {
      iss = decodeJwt(token).iss;
      alg = decodeProtectedHeader(token).alg;
    } catch {
      return fail('auth.malformed', 'token is not a well-formed JWT');
    }
    const issuer = typeof iss === 'string' ? issuers.get(iss) : undefined;
    if (!issuer) return fail('auth.issuer', 'token issuer is not trusted');
    if (!issuer.allows(alg)) return fail('auth.algorithm', 'token signing algorithm is not allowed');
    const verified = await issuer.verify(token);
    if (!verified.ok) return verified;
    if (!closer.signal.aborted) cache.set(cacheKey, verified.value.identity, verified.value.expiresAt);
    return ok(verified.value.identity);
  }

  async function authenticate(token: string): Promise<Result<Identity>> {
    if (closer.signal.aborted) return fail('auth.invalid', 'authenticator is closed');
    switch (shapeOf(token)) {
      case 'missing':
        return fail('auth.missing', 'no token presented');
      case 'malformed':
        return fail('auth.malformed', 'token is malformed');
      case 'static':
        return statics.verify(token);
      case 'jwt':
        break;
    }
    const key = createHash('sha256').update(token).digest('base64');
    const hit = cache.get(key);
    if (hit) return ok(hit);
    // A connection storm with one fresh token verifies it once, not once per connection.
    const running = inflight.get(key);
    if (running) return running;
    const p = verifyJwt(token, key)
      .catch((e: unknown) => {
        logger.error({ reason: (e as Error).message }, 'unexpected error verifying a token');
        return fail('auth.invalid', 'token could not be verified');
      })
      .finally(() => inflight.delete(key));
    inflight.set(key, p);
    return p;
  }

  return {
    async authenticate(token: string) {
      const r = await authenticate(token);
      if (!r.ok) logger.debug({ code: r.error.code }, 'token rejected');
      return r;
    },
    authenticateCertificate(cert: ClientCertificate) {
      if (closer.signal.aborted) return Promise.resolve(fail('auth.invalid', 'authenticator is closed'));
      const r = certificates.verify(cert, now() / 1000);
      if (!r.ok) logger.debug({ code: r.error.code, fingerprint256: cert.fingerprint256 }, 'client certificate rejected');
      return Promise.resolve(r);
    },
    authenticateSshKey(key: SshKeyCredential) {
      if (closer.signal.aborted) return Promise.resolve(fail('auth.invalid', 'authenticator is closed'));
      const r = sshKeys.verify(key, now() / 1000);
      if (!r.ok && key.proof !== null) logger.debug({ code: r.error.code, algo: key.algo }, 'SSH key rejected');
      return Promise.resolve(r);
    },
    close() {
      closer.abort();
      cache.clear();
    },
  };
}
