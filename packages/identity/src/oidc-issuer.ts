/**
 * Verification of a JWT against one configured issuer: its keys only, its audience,
 * its algorithms, its clock tolerance. The caller has already picked this issuer from
 * the (unverified) `iss` claim; jwtVerify checks `iss` again, now under the signature.
 */
import { jwtVerify, type JWTPayload } from 'jose';
import { ok, type Identity, type Logger, type OidcIssuerConfig, type Result } from '@gatehouse/core';
import { groupsFrom, readClaimPath } from './claim-path.js';
import { discoverJwksUri, parseHttpUrl } from './discovery.js';
import { fail, fromVerifyError } from './errors.js';
import { IssuerKeys } from './issuer-keys.js';

/** Only signature schemes with a public verification key; `none` and HS* can never be enabled. */
export const ASYMMETRIC_ALGORITHMS: ReadonlySet<string> = new Set(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519']);
const DEFAULT_ALGORITHMS = ['RS256', 'ES256', 'EdDSA', 'PS256'];

export interface IssuerTuning {
  timeoutMs: number;
  cooldownMs: number;
  maxAgeMs: number;
  maxStaleMs: number;
  maxJwksBytes: number;
  now: () => number;
  signal: AbortSignal;
  logger: Logger;
}

export interface VerifiedToken {
  identity: Identity;
  /** `exp` in ms since the epoch: the verified-token cache must not keep it past this. */
  expiresAt: number;
}

export class OidcIssuer {
  readonly issuer: string;
  private readonly algorithms: string[];
  private readonly algorithmSet: ReadonlySet<string>;
  private readonly keys: IssuerKeys;

  constructor(
    private readonly cfg: OidcIssuerConfig,
    private readonly t: IssuerTuning,
  ) {
    this.issuer = cfg.issuer;
    const wanted = cfg.algorithms?.length ? cfg.algorithms : DEFAULT_ALGORITHMS;
    this.algorithms = wanted.filter((a) => ASYMMETRIC_ALGORITHMS.has(a));
    const dropped = wanted.filter((a) => !ASYMMETRIC_ALGORITHMS.has(a));
    // The config schema already forbids these; a programmatic config must not sneak them in.
    if (dropped.length) t.logger.error({ issuer: cfg.issuer, dropped }, 'ignoring non-asymmetric algorithms');
    this.algorithmSet = new Set(this.algorithms);
    let jwksUri: URL | null = null;
    const configured = cfg.jwks_url === undefined ? null : parseHttpUrl(cfg.jwks_url, 'jwks_url');
    const discoveryOpts = { timeoutMs: t.timeoutMs, maxBytes: t.maxJwksBytes, signal: t.signal };
    this.keys = new IssuerKeys({
      issuer: cfg.issuer,
      locate: async () => {
        if (configured) return configured;
        if (jwksUri) return { ok: true, value: jwksUri };
        const found = await discoverJwksUri(cfg.issuer, discoveryOpts);
        if (found.ok) jwksUri = found.value;
        return found;
      },
      timeoutMs: t.timeoutMs,
      cooldownMs: t.cooldownMs,
      maxAgeMs: t.maxAgeMs,
      maxStaleMs: t.maxStaleMs,
      maxBytes: t.maxJwksBytes,
      now: t.now,
      signal: t.signal,
      logger: t.logger,
    });
  }

  /** Cheap pre-check on the unverified header, before any key lookup or fetch. */
  allows(alg: unknown): boolean {
    return typeof alg === 'string' && this.algorithmSet.has(alg);
  }

  async verify(token: string): Promise<Result<VerifiedToken>> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.keys.resolve, {
        issuer: this.cfg.issuer,
        audience: this.cfg.audience,
        algorithms: this.algorithms,
        clockTolerance: this.cfg.clock_tolerance ?? 30,
        currentDate: new Date(this.t.now()),
        // A token without exp would be valid forever; a caller identity must be short-lived.
        requiredClaims: ['sub', 'exp'],
      }));
    } catch (e) {
      return fromVerifyError(e);
    }
    if (typeof payload.sub !== 'string' || payload.sub === '') return fail('auth.invalid', 'token "sub" claim must be a non-empty string');
    const claims = deepFreeze(payload as Record<string, unknown>);
    const groups = Object.freeze(groupsFrom(readClaimPath(claims, this.cfg.groups_claim ?? 'groups'))) as string[];
    // Accepted until exp plus the tolerance, at connect time and on a long-lived connection alike.
    const acceptedUntil = ((payload.exp as number) + (this.cfg.clock_tolerance ?? 30)) * 1000;
    const identity: Identity = Object.freeze({ subject: payload.sub, issuer: this.cfg.issuer, groups, claims, expiresAt: acceptedUntil });
    return ok({ identity, expiresAt: (payload.exp as number) * 1000 });
  }
}

/** Cached identities are shared between sessions: nobody may change one under another's feet. */
function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as object)) deepFreeze(v);
  }
  return value;
}
