/**
 * One accepted caller: startup negotiation, authentication (the token is the password; with
 * `tls.client_auth` a mapped client certificate logs in without one), the gateway's own
 * upstream login, then the Relay. Everything before the Relay is bounded by
 * `startup_timeout`; every refusal is answered, logged and audited.
 */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { clientCertificateOf, isLoopback, type GatehouseError, type Identity, type Logger, type PeerInfo, type Result, type Session } from '@gatehouse/core';
import type { PostgresConnectorConfig } from './config.js';
import type { CancelKeys } from './cancel-keys.js';
import type { Catalog } from './catalog.js';
import { FrameReader } from './frame-reader.js';
import { Relay } from './relay.js';
import type { ServerTls } from '@gatehouse/connector-kit';
import { negotiateStartup } from './startup.js';
import { connectUpstream, type UpstreamTarget } from './upstream.js';
import { authenticationCleartextPassword, authenticationOk, backendKeyData, errorResponse, F, negotiateProtocolVersion, readyForQuery, Reader } from './wire.js';

export interface ClientDeps {
  config: PostgresConnectorConfig;
  /** The caller-side TLS handshake (and `tls.client_auth`). */
  tls: ServerTls;
  upstream: UpstreamTarget;
  /** `upstream.by_group`, in order: the first naming one of the caller's groups logs in instead. */
  byGroup: { groups: string[]; target: UpstreamTarget }[];
  catalog: Catalog;
  cancelKeys: CancelKeys;
  /** Serve a CancelRequest (here, or in the worker that issued the key). */
  cancel(pid: number, secret: number): Promise<void>;
  log: Logger;
  openSession(peer: PeerInfo): Session;
  /** The Relay took over; `onClose` fires when the session has ended. */
  onRelay(relay: Relay): void;
  onClose(relay: Relay | null): void;
}

/** Largest PasswordMessage accepted: a JWT of a few KiB fits many times over. */
const MAX_PASSWORD_MESSAGE = 64 * 1024;

/**
 * Startup parameters passed to the upstream. Others (notably `options`, which can set any
 * GUC such as `role`, bypassing statement policy) are dropped.
 */
const FORWARDED_PARAMS = ['application_name', 'client_encoding', 'DateStyle', 'TimeZone', 'IntervalStyle', 'extra_float_digits', 'search_path'];

export async function handleClient(raw: Socket, d: ClientDeps): Promise<void> {
  const cfg = d.config;
  raw.setNoDelay(true);
  const peer: PeerInfo = { address: raw.remoteAddress ?? 'unknown', port: raw.remotePort ?? 0, tls: false };
  const session = d.openSession(peer);
  let socket: Socket = raw;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    socket.destroy();
    raw.destroy();
  }, cfg.startup_timeout);
  let handedOver = false;
  const refuse = async (sqlstate: string, message: string, audit: boolean, meta: Record<string, unknown> = { sqlstate }) => {
    if (audit) await session.protocolError(message, meta);
    if (!socket.destroyed) {
      socket.end(errorResponse({ severity: 'FATAL', code: sqlstate, message: `gatehouse: ${message}` }));
      setTimeout(() => socket.destroy(), 1000).unref();
    }
  };
  raw.on('error', (e) => d.log.debug({ err: e.message }, 'client socket error'));
  try {
    const s = await negotiateStartup(raw, d.tls);
    if (s.kind === 'cancel') {
      raw.destroy();
      await d.cancel(s.pid, s.secret);
      return;
    }
    socket = s.socket;
    if (s.kind === 'refused') {
      const why = timedOut ? 'startup timeout' : s.error;
      // A client that simply went away is not a protocol error worth an audit event.
      const quiet = !timedOut && s.gone === true;
      if (s.tls) peer.tls = true;
      // A refused client certificate carries the TLS layer's reason (meta.code); the socket is
      // closed already, nothing is answered.
      if (!quiet) await refuse(s.sqlstate ?? '08P01', why, true, s.meta ?? { sqlstate: s.sqlstate ?? '08P01' });
      return;
    }
    peer.tls = s.tls;
    peer.claimedUser = s.params.get('user');
    peer.meta = { database: s.params.get('database') ?? null, application_name: s.params.get('application_name') ?? null };
    if (s.params.has('replication') && s.params.get('replication') !== 'false' && s.params.get('replication') !== '0') {
      await refuse('0A000', 'replication connections are not supported', true);
      return;
    }
    if (!s.tls && d.tls.clientAuth) {
      await refuse('28000', 'TLS with a client certificate is required on this connector (sslmode=verify-full, sslcert, sslkey)', true);
      return;
    }
    if (!s.tls && !isLoopback(peer.address)) {
      await refuse('28000', 'TLS is required: the password is a token and is never accepted in clear text off loopback', true);
      return;
    }
    // With client_auth every TLS caller that got here holds a certificate the handshake verified.
    const cert = d.tls.clientAuth ? clientCertificateOf(s.socket as TLSSocket) : null;
    if (d.tls.clientAuth && cert === null) {
      await refuse('28000', 'no verified client certificate', true);
      return;
    }
    if (cert) {
      // Every event of this connection names the certificate it came with, whichever
      // credential (certificate or token) identified the caller.
      peer.meta = { ...peer.meta, certificate: { ...(cert.subjectCN !== undefined ? { cn: cert.subjectCN } : {}), uris: cert.sanURIs, fingerprint256: cert.fingerprint256 } };
    }
    if (s.minor > 0 || s.unsupported.length > 0) socket.write(negotiateProtocolVersion(0, s.unsupported));
    // A mapped certificate logs in without a password (like PostgreSQL's `cert` method): the
    // password is asked for only when there is no certificate or it names nobody allowed here.
    // Then a non-empty password is a token and decides alone; an empty one, or none (libpq
    // hangs up when it has no password to send), leaves the certificate's refusal standing.
    let auth: Result<Identity> | null = null;
    let certificateFailure: GatehouseError | null = null;
    if (cert) {
      const byCert = await session.authenticateCertificate(cert);
      if (byCert.ok) auth = byCert;
      else if (byCert.error.code === 'audit.unavailable') {
        await refuse('28P01', byCert.error.message, false);
        return;
      } else certificateFailure = byCert.error; // audited as auth.failure, meta.certificate
    }
    if (auth === null) {
      socket.write(authenticationCleartextPassword());
      const token = await readPassword(socket);
      if (token === null) {
        // A caller that hangs up (libpq with no password to send, after its certificate was
        // refused: that auth.failure is the record) is not a protocol error.
        await refuse('08P01', timedOut ? 'startup timeout' : 'expected a password message', !socket.destroyed || timedOut);
        return;
      }
      if (token === '' && certificateFailure !== null) {
        await refuse('28P01', certificateFailure.message, false);
        return;
      }
      auth = await session.authenticate(token);
    }
    if (!auth.ok) {
      await refuse('28P01', auth.error.message, false);
      return;
    }
    const params: Record<string, string> = {};
    for (const k of FORWARDED_PARAMS) {
      const v = s.params.get(k);
      if (v !== undefined) params[k] = v;
    }
    const groups = auth.value.groups;
    const target = d.byGroup.find((g) => g.groups.some((x) => groups.includes(x)))?.target ?? d.upstream;
    const up = await connectUpstream(target, params, cfg.startup_timeout);
    if (!up.ok) {
      d.log.warn({ err: up.error.message, sqlstate: up.error.sqlstate }, 'upstream login failed');
      await refuse(up.error.sqlstate, up.error.message, false);
      // The upstream's message names the role and the reason, never the password.
      await session.end(`upstream login failed: ${up.error.sqlstate} ${up.error.message}`);
      return;
    }
    if (timedOut || socket.destroyed) {
      up.value.socket.destroy();
      await session.end(timedOut ? 'startup timeout' : 'client closed');
      return;
    }
    clearTimeout(timer);
    const key = d.cancelKeys.issue({ pid: up.value.pid, secret: up.value.secret });
    socket.cork();
    socket.write(authenticationOk());
    for (const ps of up.value.parameterStatus) socket.write(ps);
    socket.write(backendKeyData(key.pid, key.secret));
    socket.write(readyForQuery('I'));
    socket.uncork();
    const relay: Relay = new Relay(socket, up.value.socket, session, {
      database: cfg.upstream.database,
      onParseError: cfg.on_parse_error,
      maxMessageBytes: cfg.max_message_bytes,
      maxResultMessageBytes: cfg.max_result_message_bytes,
      maxNamed: cfg.max_prepared_statements,
      catalog: d.catalog,
      maskingMode: cfg.masking_mode,
      log: d.log.child({ session: session.id }),
      onClose: () => {
        d.cancelKeys.release(key.pid);
        d.onClose(relay);
      },
    });
    handedOver = true;
    d.onRelay(relay);
    relay.start();
  } catch (e) {
    d.log.error({ err: (e as Error).message }, 'client setup failed');
    await refuse('XX000', 'internal error', false);
  } finally {
    clearTimeout(timer);
    if (!handedOver) {
      await session.end('closed during startup');
      d.onClose(null);
    }
  }
}

/** The token, from a PasswordMessage; null if the caller sent anything else or left. */
async function readPassword(socket: Socket): Promise<string | null> {
  const reader = new FrameReader(socket, MAX_PASSWORD_MESSAGE);
  socket.resume();
  const f = await reader.next();
  const leftover = reader.detach();
  socket.pause();
  if (!f || f.type !== F.Password || leftover > 0) return null;
  try {
    return new Reader(f.bytes, 5).cstring();
  } catch {
    return null;
  }
}
