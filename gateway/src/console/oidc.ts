/**
 * Human sign-in: OIDC authorization code + PKCE (openid-client 6) against `console.oidc`.
 *
 * /ui/login starts one attempt: state, nonce and the PKCE verifier stay here, keyed by a
 * random id in the short-lived login cookie (SameSite=Lax: the IdP's redirect back is a
 * cross-site top-level navigation). /ui/callback takes that attempt once, redeems the code,
 * and maps the ID token's `groups` claim through `identity.roles`; nobody without a role gets
 * a session. Codes, tokens and cookie values are never logged.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import * as client from 'openid-client';
import { isLoopback, splitHostPort, type ConsoleConfig, type Identity, type Logger } from '@gatehouse/core';

export interface PendingLogin {
  state: string;
  nonce: string;
  verifier: string;
  created: number;
}

const LOGIN_TTL_MS = 10 * 60_000;
const MAX_PENDING = 1000;

/** Sign-in attempts in flight: bounded, expiring, single use. */
export class PendingLogins {
  private readonly byId = new Map<string, PendingLogin>();
  constructor(private readonly now: () => number = Date.now) {}

  start(): { id: string; login: PendingLogin } {
    const t = this.now();
    for (const [k, v] of this.byId) if (t - v.created > LOGIN_TTL_MS) this.byId.delete(k);
    while (this.byId.size >= MAX_PENDING) this.byId.delete(this.byId.keys().next().value!);
    const id = randomBytes(32).toString('base64url');
    const login = { state: client.randomState(), nonce: client.randomNonce(), verifier: client.randomPKCECodeVerifier(), created: t };
    this.byId.set(id, login);
    return { id, login };
  }

  take(id: string | undefined): PendingLogin | null {
    if (!id) return null;
    const l = this.byId.get(id);
    if (!l) return null;
    this.byId.delete(id);
    return this.now() - l.created > LOGIN_TTL_MS ? null : l;
  }
}

export type Outcome<T> = { ok: true; value: T } | { ok: false; error: string };

/** The IdP client: discovery once (retried after a failure), then authorization URLs and code redemption. */
export class OidcClient {
  private configuration: Promise<client.Configuration> | null = null;

  constructor(
    private readonly cfg: ConsoleConfig['oidc'],
    private readonly logger: Logger,
  ) {}

  private discover(): Promise<client.Configuration> {
    const issuer = new URL(this.cfg.issuer);
    // Plain http only to a loopback IdP (tests, a laptop); checked at start by checkConsoleConfig.
    const execute = issuer.protocol === 'http:' ? [client.allowInsecureRequests] : [];
    this.configuration ??= client.discovery(issuer, this.cfg.client_id, this.cfg.client_secret, undefined, { execute, timeout: 10 }).catch((e: unknown) => {
      this.configuration = null;
      throw e;
    });
    return this.configuration;
  }

  async authorizationUrl(login: PendingLogin): Promise<Outcome<URL>> {
    try {
      const config = await this.discover();
      const url = client.buildAuthorizationUrl(config, {
        redirect_uri: this.cfg.redirect_url,
        scope: 'openid',
        state: login.state,
        nonce: login.nonce,
        code_challenge: await client.calculatePKCECodeChallenge(login.verifier),
        code_challenge_method: 'S256',
      });
      return { ok: true, value: url };
    } catch (e) {
      this.logger.warn({ err: (e as Error).message, issuer: this.cfg.issuer }, 'console sign-in: OIDC discovery failed');
      return { ok: false, error: 'the identity provider cannot be reached' };
    }
  }

  /** Redeem the code of a callback request; the ID token's claims are the identity. */
  async redeem(req: IncomingMessage, login: PendingLogin): Promise<Outcome<Identity>> {
    const current = new URL(this.cfg.redirect_url);
    current.search = new URL(req.url ?? '/', 'http://x').search;
    try {
      const config = await this.discover();
      const tokens = await client.authorizationCodeGrant(config, current, {
        pkceCodeVerifier: login.verifier,
        expectedState: login.state,
        expectedNonce: login.nonce,
        idTokenExpected: true,
      });
      const claims = tokens.claims();
      if (!claims) return { ok: false, error: 'the identity provider sent no ID token' };
      const groups = Array.isArray(claims.groups) ? claims.groups.filter((g): g is string => typeof g === 'string') : [];
      return { ok: true, value: { subject: claims.sub, issuer: claims.iss, groups, claims: { sub: claims.sub, iss: claims.iss, groups } } };
    } catch (e) {
      // The message of openid-client names the failed check, never the code or a token.
      const err = e as Error & { error?: string; code?: string };
      this.logger.warn({ err: err.error ?? err.code ?? err.message }, 'console sign-in refused');
      return { ok: false, error: 'sign-in failed: the identity provider response did not check out' };
    }
  }
}

/**
 * Startup checks `console` cannot express in the schema. Returns whether cookies are
 * Secure: always, unless the admin server is plain HTTP on loopback and the console's
 * public origin (redirect_url) is http too — a browser drops Secure cookies over http://.
 */
export function checkConsoleConfig(cfg: ConsoleConfig, admin: { listen: string; tls: boolean }): Outcome<{ secure: boolean; origin: string }> {
  const issuer = new URL(cfg.oidc.issuer);
  if (issuer.protocol === 'http:' && !loopback(issuer.hostname)) return { ok: false, error: 'console.oidc.issuer: http:// is allowed only for a loopback IdP; use https' };
  const redirect = new URL(cfg.oidc.redirect_url);
  const secure = admin.tls || redirect.protocol === 'https:';
  if (!secure && !loopback(splitHostPort(admin.listen).host)) {
    return { ok: false, error: 'console: sign-in cookies over plain HTTP are allowed only on loopback; set admin.tls or an https redirect_url (TLS in front)' };
  }
  if (!secure && !loopback(redirect.hostname)) return { ok: false, error: 'console.oidc.redirect_url: http:// is allowed only on loopback; use https' };
  return { ok: true, value: { secure, origin: redirect.origin } };
}

/** A URL host or listen host on this machine only (`localhost` included: it names loopback in a browser). */
function loopback(host: string): boolean {
  const h = host.replace(/^\[(.*)\]$/, '$1');
  return h === 'localhost' || isLoopback(h);
}

export function redirect(res: ServerResponse, location: string, headers: Record<string, string | string[]> = {}): void {
  res.writeHead(302, { location, 'cache-control': 'no-store', ...headers });
  res.end();
}
