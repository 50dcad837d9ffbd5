/**
 * The web console under /ui/: sign-in (OIDC code + PKCE), cookie sessions with CSRF
 * protection, the browser assets, and the console-only read routes. The admin server
 * mounts `handle` for /ui/ and asks `authenticate` for requests without a bearer token.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { roleOf } from '@gatehouse/identity';
import type { GatehouseConfig, Identity, Logger } from '@gatehouse/core';
import type { AuditReader } from '../audit-reader.js';
import { consoleApi, type RequireRole } from './api.js';
import { AdminError } from '../problems.js';
import { cookieNames, readCookie, serializeCookie } from './cookies.js';
import { checkConsoleConfig, OidcClient, PendingLogins, redirect } from './oidc.js';
import { page, escapeHtml } from './pages.js';
import { csrfMatches, SessionStore } from './sessions.js';
import { loadAssets } from './static.js';
import { Verifier } from './verify.js';

export interface ConsoleDeps {
  config: GatehouseConfig;
  /** The admin server's bound TLS state. */
  tls: boolean;
  reader: AuditReader;
  verifierKey: string;
  logger: Logger;
}

export type ConsoleAuth = { ok: true; identity: Identity } | { ok: false; status: 401 | 403; message: string };

export interface WebConsole {
  /** Serve a request under /ui (the admin server routes every such path here). */
  handle(req: IncomingMessage, res: ServerResponse, url: URL, requireRole: RequireRole): Promise<void>;
  /** The identity of a console session cookie, with CSRF and Origin checked on state changes; null: no cookie. */
  authenticate(req: IncomingMessage): ConsoleAuth | null;
}

/**
 * No inline script or style, nothing from another origin, never framed. `wasm-unsafe-eval`:
 * asciinema-player parses recordings in WebAssembly (it allows compiling wasm, not eval of JS).
 */
const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; " +
    "worker-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

const APPROVAL_LINK = /^\/ui\/approvals\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;
const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** The agent's `state_dir` (relative to the config file's folder, as the agent resolves it), else data_dir/agent. */
function agentStateDir(config: GatehouseConfig): string {
  const configured = (config as { agent?: { state_dir?: string } }).agent?.state_dir;
  return resolve(dirname(resolve(config.source)), configured ?? join(config.data_dir, 'agent'));
}

export function createConsole(d: ConsoleDeps): WebConsole {
  const cfg = d.config.console!;
  const checked = checkConsoleConfig(cfg, { listen: d.config.admin.listen, tls: d.tls });
  if (!checked.ok) throw new Error(checked.error);
  const { secure, origin } = checked.value;
  const names = cookieNames(secure);
  const assets = loadAssets();
  const sessions = new SessionStore();
  const logins = new PendingLogins();
  const oidc = new OidcClient(cfg.oidc, d.logger);
  const verifier = new Verifier(d.config.data_dir);
  const apiDeps = { dataDir: d.config.data_dir, reader: d.reader, verifierKey: d.verifierKey, verifier, agentStateDir: agentStateDir(d.config) };

  const sendPage = (res: ServerResponse, status: number, html: string, headers: Record<string, string | string[]> = {}) => {
    res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', ...headers });
    res.end(html);
  };
  const sendJson = (res: ServerResponse, status: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
    res.end(text);
  };
  const clearLogin = serializeCookie(names.login, '', { secure, sameSite: 'Lax', maxAge: 0 });

  /** The session of the request's cookie, checked as for a state change when the method is one. */
  function authenticate(req: IncomingMessage): ConsoleAuth | null {
    const id = readCookie(req, names.session);
    if (id === undefined) return null;
    const s = sessions.get(id);
    if (!s) return { ok: false, status: 401, message: 'console session expired or signed out' };
    if (STATE_CHANGING.has(req.method ?? '')) {
      // SameSite=Strict already keeps the cookie off cross-site requests; these hold even where it does not (an old browser, a sibling subdomain).
      const token = req.headers['x-csrf-token'];
      const refusal =
        req.headers.origin !== origin ? 'cross-origin request refused' : !csrfMatches(s, typeof token === 'string' ? token : undefined) ? 'missing or wrong CSRF token' : null;
      if (refusal) {
        d.logger.warn(
          { subject: s.identity.subject, method: req.method, path: req.url?.split('?')[0], origin: req.headers.origin ?? null, reason: refusal },
          'console request refused',
        );
        return { ok: false, status: 403, message: refusal };
      }
    }
    return { ok: true, identity: s.identity };
  }

  async function login(res: ServerResponse) {
    const { id, login } = logins.start();
    const url = await oidc.authorizationUrl(login);
    if (!url.ok) return sendPage(res, 502, page('Sign-in unavailable', `<p>${escapeHtml(url.error)}. Try again later.</p>`));
    redirect(res, url.value.href, { 'set-cookie': serializeCookie(names.login, id, { secure, sameSite: 'Lax', maxAge: 600 }), ...SECURITY_HEADERS });
  }

  async function callback(req: IncomingMessage, res: ServerResponse, url: URL) {
    const attempt = logins.take(readCookie(req, names.login));
    const retry = '<p><a href="/ui/login">Sign in again</a></p>';
    if (url.searchParams.has('error')) {
      const why = (url.searchParams.get('error_description') ?? url.searchParams.get('error') ?? '').slice(0, 200);
      return sendPage(res, 400, page('Sign-in refused', `<p>The identity provider said: ${escapeHtml(why)}</p>${retry}`), { 'set-cookie': clearLogin });
    }
    if (!attempt) return sendPage(res, 400, page('Sign-in expired', `<p>This sign-in attempt is unknown or older than 10 minutes.</p>${retry}`), { 'set-cookie': clearLogin });
    const who = await oidc.redeem(req, attempt);
    if (!who.ok) return sendPage(res, 400, page('Sign-in failed', `<p>${escapeHtml(who.error)}</p>${retry}`), { 'set-cookie': clearLogin });
    const roles = roleOf(who.value, d.config.identity.roles);
    if (roles.length === 0) {
      d.logger.info({ subject: who.value.subject, groups: who.value.groups }, 'console sign-in without a role refused');
      return sendPage(
        res,
        403,
        page(
          'No access',
          `<p>You are signed in at your identity provider as ${escapeHtml(who.value.subject)}, but none of your groups has a Gatehouse role (admin, reviewer or auditor).</p>`,
        ),
        {
          'set-cookie': clearLogin,
        },
      );
    }
    const { id } = sessions.create(who.value, roles);
    d.logger.info({ subject: who.value.subject, roles }, 'console sign-in');
    // A page, not a redirect: a redirect would continue the IdP's cross-site navigation, on which the new Strict cookie is not sent.
    sendPage(res, 200, page('Signed in', '<p><a href="/ui/">Continue to the console</a></p>', { refreshTo: '/ui/' }), {
      'set-cookie': [serializeCookie(names.session, id, { secure, sameSite: 'Strict' }), clearLogin],
    });
  }

  function logout(req: IncomingMessage, res: ServerResponse) {
    const auth = authenticate(req);
    if (auth && !auth.ok && auth.status === 403) throw new AdminError(403, auth.message);
    const id = readCookie(req, names.session);
    if (auth?.ok) d.logger.info({ subject: auth.identity.subject }, 'console sign-out');
    sessions.delete(id);
    res.writeHead(204, { ...SECURITY_HEADERS, 'set-cookie': serializeCookie(names.session, '', { secure, sameSite: 'Strict', maxAge: 0 }), 'cache-control': 'no-store' });
    res.end();
  }

  function me(req: IncomingMessage, res: ServerResponse) {
    const s = sessions.get(readCookie(req, names.session));
    if (!s) throw new AdminError(401, 'not signed in');
    sendJson(res, 200, { subject: s.identity.subject, issuer: s.identity.issuer, groups: s.identity.groups, roles: s.roles, csrf: s.csrf });
  }

  function serveAsset(req: IncomingMessage, res: ServerResponse, path: string) {
    const a = assets.get(path);
    if (!a) throw new AdminError(404, 'not found');
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new AdminError(405, 'method not allowed');
    if (req.headers['if-none-match'] === a.etag) {
      res.writeHead(304, { ...SECURITY_HEADERS, etag: a.etag });
      return void res.end();
    }
    res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': a.type, 'content-length': a.body.length, etag: a.etag, 'cache-control': 'no-cache' });
    res.end(req.method === 'HEAD' ? undefined : a.body);
  }

  return {
    authenticate,
    async handle(req, res, url, requireRole) {
      const p = url.pathname;
      if (p === '/ui') return redirect(res, '/ui/', SECURITY_HEADERS);
      if (p === '/ui/login' && req.method === 'GET') return login(res);
      if (p === '/ui/callback' && req.method === 'GET') return callback(req, res, url);
      if (p === '/ui/logout') {
        if (req.method !== 'POST') throw new AdminError(405, 'sign out with POST');
        return logout(req, res);
      }
      // The links in approval notifications (packages/approvals notifier): into the console's own route.
      const link = APPROVAL_LINK.exec(p);
      if (link) return redirect(res, `/ui/#/approval/${link[1]}`, SECURITY_HEADERS);
      if (p === '/ui/api/me') return me(req, res);
      if (p.startsWith('/ui/api/')) {
        const answer = await consoleApi(req, url, requireRole, apiDeps);
        if ('json' in answer) return sendJson(res, 200, answer.json);
        res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': answer.type, 'content-length': Buffer.byteLength(answer.text), 'cache-control': 'no-store' });
        return void res.end(answer.text);
      }
      serveAsset(req, res, p === '/ui/' ? '/ui/index.html' : p);
    },
  };
}
