/**
 * Server TLS for every connector, in one place: the material (configured cert/key — inline
 * PEM or a path — with, for `client_auth`, the CA that signs callers' certificates; or a
 * development certificate created once in `data_dir/tls`), and the server side of the
 * handshake for protocols that upgrade in band, with client-certificate verification.
 *
 * The rule every in-band upgrade must keep (CVE-2021-23214): bytes a caller sent behind its
 * upgrade request were sent in clear text and must not be read as if they came over TLS.
 * `bytesBehindUpgrade` is the check.
 */
import type { Socket } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import { execFile } from 'node:child_process';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  /**
   * `tls.client_auth`: the CA (PEM) every caller's certificate must chain to. Only that CA:
   * the public roots never accept callers. Absent without `client_auth`.
   */
  clientCA?: Buffer;
  /** True when the development certificate is in use (logged as a warning). */
  development: boolean;
}

/**
 * The listener's TLS material. `development`: without a configured cert/key, create (once)
 * and use a self-signed certificate in `dataDir/tls` — never with `client_auth`.
 */
export async function loadTls(
  cfg: { cert?: string; key?: string; ca?: string; client_auth?: boolean } | undefined,
  o: { dataDir: string; connector: string; development: boolean },
): Promise<TlsMaterial> {
  const { dataDir, connector } = o;
  if (cfg?.client_auth) {
    // The config loader checks this too; never fall back to a development certificate or to
    // the public roots when callers are to be identified by their certificates.
    if (!cfg.cert || !cfg.key || !cfg.ca) throw new Error('tls: client_auth needs cert, key and ca');
    return { cert: await pem(cfg.cert), key: await pem(cfg.key), clientCA: await pem(cfg.ca), development: false };
  }
  if (cfg?.cert && cfg.key) return { cert: await pem(cfg.cert), key: await pem(cfg.key), development: false };
  if (cfg?.cert || cfg?.key) throw new Error('tls: both cert and key are required');
  if (!o.development) throw new Error('tls: cert and key are required');
  const dir = join(dataDir, 'tls');
  const certPath = join(dir, `${connector}-dev.crt`);
  const keyPath = join(dir, `${connector}-dev.key`);
  if (!(await exists(certPath)) || !(await exists(keyPath))) {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await run(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        keyPath,
        '-out',
        certPath,
        '-days',
        '825',
        '-subj',
        '/CN=gatehouse-dev',
        '-addext',
        'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1',
      ],
      { timeout: 30_000 },
    );
  }
  return { cert: await readFile(certPath), key: await readFile(keyPath), development: true };
}

/** A PEM value inline, or a path to a PEM file. */
export async function pem(value: string): Promise<Buffer> {
  return value.includes('-----BEGIN') ? Buffer.from(value) : readFile(value);
}

/**
 * Bytes already received behind an in-band upgrade request: they came in clear text, and a
 * connector that read them after the handshake would treat them as protected. Refuse.
 */
export function bytesBehindUpgrade(buffered: number): string | null {
  return buffered > 0 ? 'bytes were sent behind the TLS upgrade request (they would bypass TLS)' : null;
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

/** How a server-side TLS handshake ended. */
export type Upgrade =
  | { ok: true; socket: TLSSocket }
  /** `code`: the OpenSSL/node reason a client certificate was refused, when that was the reason. */
  | { ok: false; error: string; code?: string; gone?: boolean };

/** The message (and audit `error`) of a connection refused for its client certificate. */
export const CERTIFICATE_REFUSED = 'client certificate refused by the TLS layer';

/**
 * The server side of every caller TLS handshake of one connector. Handshakes run through a
 * `tls.Server` that never listens (the connector's TCP listener hands it sockets after the
 * in-protocol upgrade request — PostgreSQL SSLRequest, MySQL SSL request — or with the
 * ClientHello of a direct TLS connection still buffered), because only node's server path
 * verifies a client certificate (chain against `ca`, validity dates) and refuses the
 * connection when it does not verify. With `client_auth`: no certificate → the handshake
 * fails with a `certificate_required` alert; one that does not verify → node closes the
 * connection right after the handshake, before any byte of the protocol is read.
 */
export class ServerTls {
  /** `tls.client_auth`: every TLS caller here presented a certificate that verified. */
  readonly clientAuth: boolean;
  private readonly server: TlsServer;
  private readonly pending = new WeakMap<Socket, (u: Upgrade) => void>();

  constructor(m: TlsMaterial, o: { handshakeTimeoutMs: number; alpn?: string[] }) {
    this.clientAuth = m.clientCA !== undefined;
    this.server = createTlsServer({
      cert: m.cert,
      key: m.key,
      ...(m.clientCA ? { ca: m.clientCA } : {}),
      requestCert: this.clientAuth,
      rejectUnauthorized: this.clientAuth,
      ...(o.alpn ? { ALPNProtocols: o.alpn } : {}),
      handshakeTimeout: o.handshakeTimeoutMs,
    });
    this.server.on('secureConnection', (t: TLSSocket) => {
      // The certificate is read once per connection: renegotiation must not swap it underneath.
      if (this.clientAuth) t.disableRenegotiation();
      t.on('error', () => {}); // later errors surface as 'close' to the owner
      t.pause();
      this.settle(t, { ok: true, socket: t });
    });
    this.server.on('tlsClientError', (e: NodeJS.ErrnoException, t: TLSSocket) => {
      t.destroy();
      // A certificate that fails verification: node sets authorizationError (an OpenSSL code
      // such as UNABLE_TO_VERIFY_LEAF_SIGNATURE) and closes the socket, reported as a hang-up.
      const authorizationError: unknown = t.authorizationError;
      const verifyCode = typeof authorizationError === 'string' ? authorizationError : undefined;
      const code = verifyCode ?? e.code;
      if (this.clientAuth && (verifyCode !== undefined || code === 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE')) {
        this.settle(t, { ok: false, error: CERTIFICATE_REFUSED, code });
      } else if (code === 'ECONNRESET') {
        this.settle(t, { ok: false, error: 'client closed during TLS handshake', gone: true });
      } else {
        this.settle(t, { ok: false, error: `TLS handshake failed: ${e.message}` });
      }
    });
  }

  /** Runs the server side of a TLS handshake on `socket` (paused; may hold a buffered ClientHello). */
  upgrade(socket: Socket): Promise<Upgrade> {
    return new Promise((resolve) => {
      const done = (u: Upgrade) => {
        if (!this.pending.has(socket)) return;
        this.pending.delete(socket);
        socket.off('close', onClose);
        resolve(u);
      };
      // The server reports every handshake it ran (secureConnection or tlsClientError, which
      // for a refused certificate comes just after the TCP socket's 'close'). This is only a
      // backstop, late enough never to hide that report (a quiet close is not audited).
      const onClose = () => setTimeout(() => done({ ok: false, error: 'client closed during TLS handshake', gone: true }), 1000).unref();
      this.pending.set(socket, done);
      socket.once('close', onClose);
      this.server.emit('connection', socket);
    });
  }

  private settle(t: TLSSocket, u: Upgrade): void {
    // node's TLSSocket keeps the socket it wraps as `_parent` (set for every net.Socket it
    // wraps); the TLSSocket itself may already be destroyed here, without its address.
    const parent = (t as unknown as { _parent?: Socket | null })._parent;
    const done = parent ? this.pending.get(parent) : undefined;
    if (done) done(u);
    else if (u.ok) u.socket.destroy();
  }
}
