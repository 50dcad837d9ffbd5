/**
 * The gateway's own connection to a target: TCP with a deadline, then — for protocols that
 * upgrade in band (PostgreSQL SSLRequest, MySQL SSL request) — TLS on the same socket with
 * the configured verification. `verify` checks the chain against `ca` (or the system store)
 * and the certificate against the configured host, also when that host is an IP address.
 */
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { checkServerIdentity, connect as tlsConnect, type TLSSocket } from 'node:tls';
import { err, ok, splitHostPort, type Result } from '@gatehouse/core';

/** Open a TCP connection to `host:port` within `timeoutMs` (`upstream.unreachable` otherwise). */
export async function connectTcp(address: string, timeoutMs: number): Promise<Result<Socket>> {
  const { host, port } = splitHostPort(address);
  const raw = netConnect({ host, port });
  raw.setNoDelay(true);
  const timer = setTimeout(() => raw.destroy(new Error(`connect timed out after ${timeoutMs} ms`)), timeoutMs);
  try {
    const failed = await new Promise<Error | null>((resolve) => {
      raw.once('connect', () => resolve(null));
      raw.once('error', resolve);
    });
    if (failed) return err('upstream.unreachable', `cannot reach upstream ${address}: ${failed.message}`);
    return ok(raw);
  } finally {
    clearTimeout(timer);
  }
}

export interface UpstreamTlsOptions {
  /** The configured host (name or IP): SNI for names, and what the certificate must name. */
  host: string;
  /** Verify chain and host name (verify-full); false: encrypt only (require / prefer). */
  verify: boolean;
  /** PEM CA bundle; replaces the system trust store when verifying. */
  ca?: Buffer;
}

/** TLS client handshake on an already connected socket (`upstream.tls` on failure). */
export async function secureUpstream(raw: Socket, o: UpstreamTlsOptions): Promise<Result<TLSSocket>> {
  const secure = tlsConnect({
    socket: raw,
    servername: isIP(o.host) ? undefined : o.host,
    rejectUnauthorized: o.verify,
    ...(o.verify && o.ca ? { ca: o.ca } : {}),
    // Check the configured host explicitly: with `socket` and no `servername` (an IP
    // address), Node would check the certificate against "localhost" instead.
    checkServerIdentity: (_name, cert) => checkServerIdentity(o.host, cert),
  });
  const failed = await new Promise<Error | null>((resolve) => {
    secure.once('secureConnect', () => resolve(null));
    secure.once('error', resolve);
  });
  if (failed) {
    secure.destroy();
    return err('upstream.tls', `upstream TLS failed: ${failed.message}`);
  }
  secure.setNoDelay(true);
  return ok(secure);
}
