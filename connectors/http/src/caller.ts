/**
 * Caller authentication per client connection. A connection holds one Session for the
 * bearer token it presents; keep-alive requests with the same token share it, a different
 * token ends that Session and opens a new one (so every audit event names the identity
 * whose token authorised it), and an expired JWT (`exp` claim) is re-checked.
 */
import type { Socket } from 'node:net';
import type { ConnectorContext, HttpConnectorConfig, PeerInfo, Result, Session } from '@gatehouse/core';
import { err, isLoopback, ok } from '@gatehouse/core';

export interface CallerConnection {
  readonly peer: PeerInfo;
  /** Bearer tokens are refused in clear text from anything but loopback. */
  readonly cleartextRemote: boolean;
  token: string | null;
  auth: Promise<Result<Session>> | null;
  /** Settled session for `token` (lets the hot path skip an await). */
  session: Session | null;
  /** Seconds since the epoch after which the identity must be re-checked (JWT `exp`), or Infinity. */
  expiresAt: number;
  /** Became a WebSocket tunnel: its Session is closed by the tunnel, after the unit is recorded. */
  upgraded: boolean;
}

export function newCallerConnection(socket: Socket, tls: boolean): CallerConnection {
  const address = socket.remoteAddress ?? 'unknown';
  return {
    peer: { address, port: socket.remotePort ?? 0, tls },
    cleartextRemote: !tls && !isLoopback(address),
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
  if (conn.token === token) {
    if (conn.session !== null && conn.expiresAt > Date.now() / 1000) return ok(conn.session);
    if (conn.session === null && conn.auth !== null) return conn.auth;
  }
  if (conn.session !== null) track(conn.session.end(conn.token === token ? 'token expired' : 'token changed'));
  conn.token = token;
  conn.session = null;
  const session = ctx.openSession(conn.peer);
  const auth = session.authenticate(token).then((r): Result<Session> => {
    if (!r.ok) return r;
    if (conn.token === token) {
      conn.session = session;
      const exp = r.value.claims.exp;
      conn.expiresAt = typeof exp === 'number' ? exp : Infinity;
    } else {
      track(session.end('token changed')); // superseded while authenticating
    }
    return ok(session);
  });
  conn.auth = auth;
  return auth;
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
