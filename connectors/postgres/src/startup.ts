/**
 * The client's startup phase, before any typed message: SSLRequest (→ TLS), GSSENCRequest
 * (→ 'N'), direct TLS (first byte 0x16, ALPN `postgresql`, as PostgreSQL 17 clients do),
 * CancelRequest, and the StartupMessage itself. The caller bounds the whole phase in time.
 * With `tls.client_auth` the handshake itself requires a client certificate that chains to
 * the connector's CA; anything else never gets past TLS.
 */
import type { Socket } from 'node:net';
import { bytesBehindUpgrade, type ServerTls } from '@gatehouse/connector-kit';
import { CANCEL_REQUEST, GSSENC_REQUEST, PROTOCOL_3_0, SSL_REQUEST } from './wire.js';

/** PostgreSQL's own limit (MAX_STARTUP_PACKET_LENGTH). */
export const MAX_STARTUP_PACKET = 10_000;

export type StartupOutcome =
  | { kind: 'startup'; socket: Socket; tls: boolean; params: Map<string, string>; minor: number; unsupported: string[] }
  | { kind: 'cancel'; pid: number; secret: number }
  /**
   * The client went away, or sent something we refuse; `error` is for the log/audit, `meta`
   * goes into the audit event (`code`: why the TLS layer refused a client certificate);
   * `tls`: the refusal came from (or after) a TLS handshake.
   */
  | { kind: 'refused'; socket: Socket; error: string; sqlstate?: string; meta?: Record<string, unknown>; tls?: boolean; gone?: boolean };

interface Packet {
  code: number;
  body: Buffer;
  /** Bytes received beyond this packet. */
  extra: number;
}

export async function negotiateStartup(raw: Socket, clientTls: ServerTls): Promise<StartupOutcome> {
  let socket: Socket = raw;
  let tls = false;
  const first = await readChunk(raw);
  if (!first) return { kind: 'refused', socket, error: 'client closed before startup', gone: true };
  let pending: Buffer | null = first;
  if (first[0] === 0x16) {
    // Direct TLS: hand the ClientHello back to the stream and let TLS take the socket over.
    raw.unshift(first);
    pending = null;
    const up = await clientTls.upgrade(raw);
    if (!up.ok) return refusedTls(raw, up);
    if (up.socket.alpnProtocol !== 'postgresql') {
      up.socket.destroy();
      return { kind: 'refused', socket: up.socket, error: 'direct TLS without ALPN "postgresql"' };
    }
    socket = up.socket;
    tls = true;
  }
  for (;;) {
    const p = await readPacket(socket, pending);
    pending = null;
    if (p === CLIENT_GONE) return { kind: 'refused', socket, error: 'client closed during startup', gone: true };
    if (typeof p === 'string') return { kind: 'refused', socket, error: p, sqlstate: '08P01' };
    if (p.code === SSL_REQUEST || p.code === GSSENC_REQUEST) {
      // Bytes pipelined behind an encryption request would be read as if they were encrypted
      // (CVE-2021-23214): refuse.
      const behind = bytesBehindUpgrade(p.extra);
      if (behind) return { kind: 'refused', socket, error: behind, sqlstate: '08P01' };
      if (p.code === GSSENC_REQUEST || tls) {
        if (tls) return { kind: 'refused', socket, error: 'encryption requested twice', sqlstate: '08P01' };
        socket.write('N');
        continue;
      }
      socket.write('S');
      const up = await clientTls.upgrade(socket);
      if (!up.ok) return refusedTls(socket, up);
      socket = up.socket;
      tls = true;
      continue;
    }
    if (p.code === CANCEL_REQUEST) {
      if (p.body.length !== 8) return { kind: 'refused', socket, error: 'malformed CancelRequest', sqlstate: '08P01' };
      return { kind: 'cancel', pid: p.body.readInt32BE(0), secret: p.body.readInt32BE(4) };
    }
    if (p.code >>> 16 !== 3) return { kind: 'refused', socket, error: `unsupported frontend protocol ${p.code >>> 16}.${p.code & 0xffff}`, sqlstate: '0A000' };
    if (p.extra > 0) return { kind: 'refused', socket, error: 'data after the startup message', sqlstate: '08P01' };
    const params = new Map<string, string>();
    const unsupported: string[] = [];
    const parts = p.body.toString('utf8').split('\0');
    // key\0value\0 … \0 — the final empty string terminates the list.
    if (parts.length < 2 || parts[parts.length - 1] !== '' || parts[parts.length - 2] !== '' || parts.length % 2 !== 0) {
      return { kind: 'refused', socket, error: 'malformed startup message', sqlstate: '08P01' };
    }
    for (let i = 0; i + 1 < parts.length - 1; i += 2) {
      if (parts[i].startsWith('_pq_.')) unsupported.push(parts[i]);
      else params.set(parts[i], parts[i + 1]);
    }
    return { kind: 'startup', socket, tls, params, minor: p.code & 0xffff, unsupported };
  }
  void PROTOCOL_3_0;
}

function readChunk(socket: Socket): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const done = (v: Buffer | null) => {
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.off('error', onClose);
      socket.pause();
      resolve(v);
    };
    const onData = (c: Buffer) => done(c);
    const onClose = () => done(null);
    socket.on('data', onData);
    socket.on('close', onClose);
    socket.on('error', onClose);
    socket.resume();
  });
}

/** readPacket's answer when the client went away (not a protocol error: nothing to audit). */
const CLIENT_GONE = Symbol('client gone');

/** One untyped startup-phase packet (int32 length incl. itself, int32 code, body). */
async function readPacket(socket: Socket, first: Buffer | null): Promise<Packet | string | typeof CLIENT_GONE> {
  let buf = first ?? Buffer.alloc(0);
  for (;;) {
    if (buf.length >= 4) {
      const len = buf.readInt32BE(0);
      if (len < 8 || len > MAX_STARTUP_PACKET) return `bad startup packet length ${len}`;
      if (buf.length >= len) return { code: buf.readInt32BE(4), body: buf.subarray(8, len), extra: buf.length - len };
    }
    const more = await readChunk(socket);
    if (!more) return CLIENT_GONE;
    if (buf.length + more.length > MAX_STARTUP_PACKET + 8) return 'startup packet too long';
    buf = buf.length ? Buffer.concat([buf, more]) : more;
  }
}

function refusedTls(socket: Socket, up: { error: string; code?: string; gone?: boolean }): StartupOutcome {
  return { kind: 'refused', socket, error: up.error, tls: true, ...(up.gone ? { gone: true } : {}), ...(up.code !== undefined ? { meta: { code: up.code } } : {}) };
}
