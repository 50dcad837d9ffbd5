/**
 * The HTTP connector: a node:http(s) listener in front of one upstream origin, reached
 * through an undici Pool (keep-alive, bounded connections). Owns its sockets and nothing else.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Duplex } from 'node:stream';
import { Pool } from 'undici';
import { ConnectorServer, loadTls, pem } from '@gatehouse/connector-kit';
import { type Connector, type ConnectorContext, type ConnectorFactory } from '@gatehouse/core';
import type { HttpConnectorConfig } from './config.js';
import { closeCaller, newCallerConnection, type CallerConnection } from './caller.js';
import { resolveUpstreamAuth } from './credential.js';
import { handleRequest, type HandlerDeps } from './handler.js';
import { handleUpgrade } from './websocket.js';
import { planUnits } from './unit.js';
import { internalError, rawProblem, sendProblem } from './problem.js';
import { dropSets } from './headers.js';

/** Upstream connections kept per connector; enough for 64+ concurrent callers without queueing. */
const POOL_CONNECTIONS = 128;

export const createHttpConnector: ConnectorFactory<HttpConnectorConfig> = (ctx) => new HttpConnector(ctx);

class HttpConnector implements Connector {
  readonly name: string;
  readonly type = 'http';
  private listener: ConnectorServer | null = null;
  private pool: Pool | null = null;
  private isTls = false;
  private readonly callers = new WeakMap<object, CallerConnection>();
  /** Session ends and audit writes that stop() waits for. */
  private readonly track = (p: Promise<void>) => this.listener?.track(p);

  constructor(private readonly ctx: ConnectorContext<HttpConnectorConfig>) {
    this.name = ctx.config.name;
  }

  get connections(): number {
    return this.listener?.connections ?? 0;
  }

  async start(): Promise<string> {
    const cfg = this.ctx.config;
    const auth = resolveUpstreamAuth(cfg.upstream);
    if (!auth.ok) throw new Error(`connector "${cfg.name}": ${auth.error.message}`);
    const url = new URL(cfg.upstream.url);
    const ca = cfg.upstream.ca ? (await pem(cfg.upstream.ca)).toString('utf8') : undefined;
    const timeout = cfg.upstream.timeout;
    this.pool = new Pool(url.origin, {
      connections: POOL_CONNECTIONS,
      pipelining: 1,
      keepAliveTimeout: 4_000,
      headersTimeout: timeout,
      bodyTimeout: timeout,
      connectTimeout: Math.min(timeout, 10_000),
      // `ca` replaces the system trust store: only the pinned CA is accepted.
      connect: url.protocol === 'https:' ? { ...(ca ? { ca } : {}), rejectUnauthorized: true } : undefined,
    });
    const tls = cfg.tls;
    const proto = tls?.cert ? 'https' : 'http';
    const deps: HandlerDeps = {
      ctx: this.ctx,
      settings: {
        maxBodyBytes: cfg.max_body_bytes,
        unknownContent: cfg.unknown_content ?? 'detectors',
        auditBodyBytes: cfg.audit_body_bytes ?? 4096,
        upstream: url.origin,
      },
      plan: planUnits(cfg.rules),
      auth: auth.value,
      upstream: this.pool,
      basePath: url.pathname.replace(/\/+$/, ''),
      proto,
      track: this.track,
      stripMethodOverride: cfg.method_override === 'strip',
      drop: dropSets(cfg.method_override === 'strip'),
    };
    const options = {
      keepAliveTimeout: 5_000,
      headersTimeout: 20_000,
      requestTimeout: 0, // large uploads stream for as long as they flow; undici's bodyTimeout bounds stalls
      maxHeaderSize: 16_384,
      insecureHTTPParser: false,
      requireHostHeader: true,
    };
    // HTTP callers are plain HTTP unless the connector has a certificate (no development one:
    // a token is still never accepted in clear text off loopback).
    const material = proto === 'https' ? await loadTls(tls, { dataDir: this.ctx.dataDir, connector: cfg.name, development: false }) : null;
    const server: Server = material
      ? createHttpsServer({
          ...options,
          cert: material.cert,
          key: material.key,
          ...(material.clientCA ? { ca: material.clientCA } : {}),
          requestCert: material.clientCA !== undefined,
          rejectUnauthorized: material.clientCA !== undefined,
        })
      : createHttpServer(options);
    const isTls = proto === 'https';
    this.isTls = isTls;
    const clientAuth = isTls && (tls?.client_auth ?? false);
    if (clientAuth) {
      // The certificate is read once per connection: renegotiation must not swap it underneath.
      server.on('secureConnection', (s: TLSSocket) => s.disableRenegotiation());
      server.on('tlsClientError', (e: NodeJS.ErrnoException, s: TLSSocket) => this.certificateRefused(e, s));
    }
    const callerOf = (socket: Socket): CallerConnection => {
      let c = this.callers.get(socket);
      if (!c) {
        c = newCallerConnection(socket, isTls, clientAuth);
        this.callers.set(socket, c);
        const conn = c;
        socket.once('close', () => {
          if (!conn.upgraded) closeCaller(conn, 'connection closed', this.track);
        });
      }
      return c;
    };
    const listener = new ConnectorServer(server, this.ctx.logger);
    this.listener = listener;
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      // Most requests are handed to the upstream before handleRequest returns (no promise);
      // a throw on either path is the caller's 500.
      try {
        handleRequest(deps, callerOf(req.socket), req, res)?.catch((e: unknown) => this.internalError(res, e));
      } catch (e) {
        this.internalError(res, e);
      }
    });
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      handleUpgrade(deps, callerOf(req.socket), req, socket, head).catch((e) => {
        this.ctx.logger.error({ err: (e as Error).message }, 'websocket handling failed');
        socket.destroy();
      });
    });
    server.on('clientError', (e: NodeJS.ErrnoException, socket: Duplex) => this.clientError(e, socket));
    const bound = await listener.listen(cfg.listen);
    this.ctx.logger.info({ listen: bound, upstream: url.origin }, 'http connector listening');
    return bound;
  }

  /** A request node:http could not parse (smuggling attempts, bad bytes, obs-fold): 400, audited, closed. */
  private clientError(e: NodeJS.ErrnoException, socket: Duplex): void {
    if (e.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const tooLarge = e.code === 'HPE_HEADER_OVERFLOW';
    const timedOut = e.code === 'ERR_HTTP_REQUEST_TIMEOUT';
    const status = tooLarge ? 431 : timedOut ? 408 : 400;
    const title = tooLarge ? 'Request Header Fields Too Large' : timedOut ? 'Request Timeout' : 'Bad Request';
    const s = socket as Socket;
    const session = this.ctx.openSession({ address: s.remoteAddress ?? 'unknown', port: s.remotePort ?? 0, tls: this.isTls });
    this.track(session.protocolError('malformed HTTP request', { code: e.code ?? 'unknown' }).then(() => undefined));
    socket.end(
      rawProblem({ code: 'bad-request', status, title, detail: timedOut ? 'request headers not received in time' : `malformed HTTP request (${e.code ?? 'parse error'})` }),
    );
  }

  /**
   * A TLS connection refused by `tls.client_auth` (no certificate, or one the CA did not
   * sign): node closes it without a response; the refusal gets a log line and an audit event.
   * Other handshake failures (scanners, protocol mismatch) stay out of the audit.
   */
  private certificateRefused(e: NodeJS.ErrnoException, s: TLSSocket): void {
    // A certificate that fails verification: node sets authorizationError (an OpenSSL code such
    // as UNABLE_TO_VERIFY_LEAF_SIGNATURE) and closes the socket, reported here as a hang-up.
    const verifyCode = (s as unknown as { authorizationError?: string }).authorizationError;
    const code = verifyCode ?? e.code;
    if (verifyCode === undefined && code !== 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE') return;
    this.ctx.logger.warn({ peer: s.remoteAddress, code }, 'client certificate refused');
    const session = this.ctx.openSession({ address: s.remoteAddress ?? 'unknown', port: s.remotePort ?? 0, tls: true });
    this.track(session.protocolError('client certificate refused by the TLS layer', { code }).then(() => undefined));
  }

  private internalError(res: ServerResponse, e: unknown): void {
    this.ctx.logger.error({ err: (e as Error).message }, 'request handling failed');
    sendProblem(res, internalError(), undefined, true);
  }

  async stop(drainMs: number): Promise<void> {
    const listener = this.listener;
    if (!listener) return;
    const server = listener.server as Server;
    // Keep-alive callers between requests are idle: they go at once; in-flight requests finish.
    await listener.stop(drainMs, { nudgeIdle: () => server.closeIdleConnections() });
    await this.pool?.close().catch(() => this.pool?.destroy());
    this.pool = null;
  }
}
