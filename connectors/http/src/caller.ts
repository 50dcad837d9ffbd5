/**
 * Caller authentication per client connection. A connection holds one Session for the
 * credential it presents — a bearer token, or (no Authorization header, `tls.client_auth`)
 * its verified client certificate; keep-alive requests with the same token share it, a different
 * token ends that Session and opens a new one (so every audit event names the identity
 * whose token authorised it), and an expired JWT (`exp` claim) is re-checked.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { ClientCertificate, ConnectorContext, Identity, PeerInfo, Result, Session } from '@gatehouse/core';
import type { HttpConnectorConfig } from './config.js';
import { clientCertificateOf, err, isLoopback, ok } from '@gatehouse/core';

export interface CallerConnection {
  readonly peer: PeerInfo;
  /** Bearer tokens are refused in clear text from anything but loopback. */
  readonly cleartextRemote: boolean;
  /** The client certificate the TLS layer verified (only with `tls.client_auth`), read once per connection. */
  readonly certificate: ClientCertificate | null;
  /** The credential the current Session is for: a bearer token, or CERTIFICATE_KEY. */
  token: string | null;
  auth: Promise<Result<Session>> | null;
  /** Settled session for `token` (lets the hot path skip an await). */
  session: Session | null;
  /** When the identity's credential stops being accepted (Identity.expiresAt, ms since the epoch), or Infinity: re-checked past it. */
  expiresAt: number;
  /** Became a WebSocket tunnel: its Session is closed by the tunnel, after the unit is recorded. */
  upgraded: boolean;
}

/** Stands for "the connection's certificate" where a token would be; no bearer token is empty. */
const CERTIFICATE_KEY = '';

export function newCallerConnection(socket: Socket, tls: boolean, clientAuth = false): CallerConnection {
  const address = socket.remoteAddress ?? 'unknown';
  return {
    peer: { address, port: socket.remotePort ?? 0, tls },
    cleartextRemote: !tls && !isLoopback(address),
    certificate: tls && clientAuth ? clientCertificateOf(socket as TLSSocket) : null,
    token: null,
    auth: null,
    session: null,
    expiresAt: Infinity,
    upgraded: false,
  };
}

const BEARER = /^Bearer[ \t]+([A-Za-z0-9\-._~+/]+=*)[ \t]*$/i;

/** The token of an `Authorization: Bearer` header, or null. */
export function bearerToken(header: string | undefined): string | null {
  if (!header) return null;
  const m = BEARER.exec(header);
  return m ? m[1] : null;
}

/**
 * The authenticated Session for `token` on this connection. `track` receives the end()
 * promise of a Session being replaced so that shutdown can wait for its audit event.
 */
export function sessionFor(
  conn: CallerConnection,
  token: string,
  ctx: ConnectorContext<HttpConnectorConfig>,
  track: (p: Promise<void>) => void,
): Promise<Result<Session>> | Result<Session> {
  if (conn.cleartextRemote) return err('auth.cleartext', 'bearer tokens are not accepted over clear text from a remote peer; use TLS');
  return sessionForKey(conn, token, (s) => s.authenticate(token), ctx, track);
}

/** The authenticated Session for the connection's verified client certificate (no bearer token sent). */
export function sessionForCertificate(
  conn: CallerConnection,
  ctx: ConnectorContext<HttpConnectorConfig>,
  track: (p: Promise<void>) => void,
): Promise<Result<Session>> | Result<Session> {
  const cert = conn.certificate;
  if (cert === null) return err('auth.missing', 'no verified client certificate');
  return sessionForKey(conn, CERTIFICATE_KEY, (s) => s.authenticateCertificate(cert), ctx, track);
}

function sessionForKey(
  conn: CallerConnection,
  key: string,
  authenticate: (s: Session) => Promise<Result<Identity>>,
  ctx: ConnectorContext<HttpConnectorConfig>,
  track: (p: Promise<void>) => void,
): Promise<Result<Session>> | Result<Session> {
  if (conn.token === key) {
    if (conn.session !== null && conn.expiresAt > Date.now()) return ok(conn.session);
    if (conn.session === null && conn.auth !== null) return conn.auth;
  }
  if (conn.session !== null) track(conn.session.end(conn.token === key ? 'token expired' : 'token changed'));
  conn.token = key;
  conn.session = null;
  const session = ctx.openSession(conn.peer);
  const auth = authenticate(session).then((r): Result<Session> => {
    if (!r.ok) return r;
    if (conn.token === key) {
      conn.session = session;
      // JWT `exp` (with the issuer's clock tolerance), or a certificate's notAfter.
      conn.expiresAt = r.value.expiresAt ?? Infinity;
    } else {
      track(session.end('token changed')); // superseded while authenticating
    }
    return ok(session);
  });
  conn.auth = auth;
  return auth;
}

/**
 * Who is calling, by precedence: an `Authorization: Bearer` token always wins; with no
 * Authorization header at all, the connection's verified client certificate (tls.client_auth).
 * A malformed Authorization header never falls back to the certificate (the caller meant a
 * token). Null when there is no credential; that refusal is audited here as a protocol error.
 * Token refusals before verification (clear text off loopback) are audited here too.
 */
export function authenticateCaller(
  d: { ctx: ConnectorContext<HttpConnectorConfig>; track: (p: Promise<void>) => void },
  conn: CallerConnection,
  req: IncomingMessage,
  upgrade: boolean,
): Promise<Result<Session> | null> | Result<Session> {
  const authorization = req.headers.authorization;
  const token = bearerToken(authorization);
  if (token === null && (authorization !== undefined || conn.certificate === null)) {
    return d.ctx
      .openSession(conn.peer)
      .protocolError('missing or malformed bearer token', refusalMeta(req, upgrade))
      .then(() => null);
  }
  // Not async: a keep-alive request on an authenticated connection gets its Session back without a new promise.
  const authed = token !== null ? sessionFor(conn, token, d.ctx, d.track) : sessionForCertificate(conn, d.ctx, d.track);
  if (!(authed instanceof Promise) && !authed.ok && authed.error.code === 'auth.cleartext') {
    return d.ctx
      .openSession(conn.peer)
      .protocolError(authed.error.message, refusalMeta(req, upgrade))
      .then(() => authed);
  }
  return authed;
}

function refusalMeta(req: IncomingMessage, upgrade: boolean): Record<string, unknown> {
  if (upgrade) return { method: 'GET', upgrade: 'websocket' };
  const url = req.url ?? '';
  const q = url.indexOf('?');
  return { method: req.method, path: q === -1 ? url : url.slice(0, q) };
}

/** The 401 detail when no credential came. */
export function credentialRequired(conn: CallerConnection): string {
  return conn.certificate === null ? 'an Authorization: Bearer token is required' : 'an Authorization: Bearer token or a mapped client certificate is required';
}

/** Ends the connection's Session (socket closed). */
export function closeCaller(conn: CallerConnection, reason: string, track: (p: Promise<void>) => void): void {
  const s = conn.session;
  conn.session = null;
  conn.token = null;
  if (s !== null) track(s.end(reason));
  else if (conn.auth !== null) {
    // Authentication still in flight: end whatever it produces.
    track(conn.auth.then((r) => (r.ok ? r.value.end(reason) : undefined)));
  }
  conn.auth = null;
}
