/**
 * The gateway's own login to the upstream MySQL / MariaDB server with the connector's
 * credential: greeting, optional TLS (`upstream.tls.mode`, as libpq's sslmode), then
 * authentication — mysql_native_password, caching_sha2_password (fast path; full path over
 * TLS or by RSA key exchange), sha256_password, and mysql_clear_password over TLS or
 * loopback — including auth switch requests. The caller's capabilities are asked for
 * upstream, so that the bytes relayed afterwards mean the same thing on both sides.
 */
import type { Socket } from 'node:net';
import { connectTcp, secureUpstream } from '@gatehouse/connector-kit';
import { isLoopback, splitHostPort } from '@gatehouse/core';
import { encode, readErr, readOk, type Packet } from './packet.js';
import { PacketReader } from './packet-reader.js';
import {
  buildHandshakeResponse,
  buildSslRequest,
  CACHING_SHA2,
  CAP,
  CLEAR,
  COM,
  firstAuthResponse,
  GATEWAY_CAPABILITIES,
  NATIVE,
  readAuthSwitch,
  readGreeting,
  rsaEncryptPassword,
  SHA256_PASSWORD,
} from './protocol.js';

export type UpstreamTlsMode = 'disable' | 'prefer' | 'require' | 'verify-full';

export interface UpstreamTarget {
  address: string;
  database: string;
  user: string;
  password: string;
  tls: { mode: UpstreamTlsMode; ca?: Buffer };
}

export interface UpstreamConnection {
  socket: Socket;
  /** Capabilities in force on this connection (the caller's, as the server granted them). */
  capabilities: number;
  status: number;
  serverVersion: string;
  connectionId: number;
  /** The last scramble the server sent (COM_CHANGE_USER answers to it). */
  scramble: Buffer;
  tls: boolean;
}

export interface UpstreamError {
  code: number;
  sqlstate: string;
  message: string;
}

/** Capabilities that change how packets are laid out: the upstream must grant each one the caller uses. */
const FORMAT_CAPABILITIES =
  CAP.PROTOCOL_41 | CAP.SECURE_CONNECTION | CAP.PLUGIN_AUTH | CAP.DEPRECATE_EOF | CAP.SESSION_TRACK | CAP.MULTI_RESULTS | CAP.PS_MULTI_RESULTS | CAP.MULTI_STATEMENTS;
const MAX_AUTH_PACKET = 64 * 1024;

type R<T> = { ok: true; value: T } | { ok: false; error: UpstreamError };
const fail = (message: string, sqlstate = '08004', code = 2013): R<never> => ({ ok: false, error: { code, sqlstate, message } });

/**
 * Connect and log in. `callerCapabilities`: what the caller negotiated with the gateway;
 * `charset`: its collation id.
 */
export async function connectUpstream(
  target: UpstreamTarget,
  o: { callerCapabilities: number; charset: number; timeoutMs: number; attributes?: Record<string, string> },
): Promise<R<UpstreamConnection>> {
  const tcp = await connectTcp(target.address, o.timeoutMs);
  if (!tcp.ok) return fail(tcp.error.message, '08001', 2003);
  const raw = tcp.value;
  const timer = setTimeout(() => raw.destroy(new Error('upstream login timed out')), o.timeoutMs);
  let socket: Socket = raw;
  try {
    let reader = new PacketReader(raw, MAX_AUTH_PACKET);
    const first = await reader.next();
    if (!first) return fail('upstream closed the connection before its greeting');
    if (first.payload[0] === 0xff) {
      const e = readErr(first.payload);
      return fail(`upstream refused the connection: ${e.message}`, e.sqlstate, e.code);
    }
    const greeting = readGreeting(first.payload);
    const server = greeting.capabilities;
    if ((server & (CAP.PROTOCOL_41 | CAP.SECURE_CONNECTION | CAP.PLUGIN_AUTH)) !== (CAP.PROTOCOL_41 | CAP.SECURE_CONNECTION | CAP.PLUGIN_AUTH)) {
      return fail('upstream does not speak the 4.1 protocol with plugin authentication');
    }
    const wanted = (o.callerCapabilities & GATEWAY_CAPABILITIES & ~CAP.SSL) | CAP.PROTOCOL_41 | CAP.SECURE_CONNECTION | CAP.PLUGIN_AUTH | CAP.LONG_PASSWORD;
    const missing = wanted & FORMAT_CAPABILITIES & ~server;
    if (missing) return fail(`upstream lacks capabilities the caller uses (0x${missing.toString(16)})`);
    let caps = (wanted & server) >>> 0;
    if (server & CAP.CONNECT_ATTRS) caps |= CAP.CONNECT_ATTRS;
    if (server & CAP.PLUGIN_AUTH_LENENC_CLIENT_DATA) caps |= CAP.PLUGIN_AUTH_LENENC_CLIENT_DATA;
    let seq = 1;
    let tls = false;
    const mode = target.tls.mode;
    if (mode !== 'disable' && server & CAP.SSL) {
      raw.write(encode(buildSslRequest(caps, o.charset), seq++));
      const leftover = reader.detach();
      if (leftover.length > 0) return fail('upstream sent data before the TLS handshake');
      const { host } = splitHostPort(target.address);
      const secured = await secureUpstream(raw, { host, verify: mode === 'verify-full', ...(target.tls.ca ? { ca: target.tls.ca } : {}) });
      if (!secured.ok) return fail(secured.error.message);
      socket = secured.value;
      tls = true;
      caps |= CAP.SSL;
      reader = new PacketReader(socket, MAX_AUTH_PACKET);
    } else if (mode === 'require' || mode === 'verify-full') {
      return fail(`upstream does not offer TLS (tls.mode is ${mode})`);
    }
    const plugin = firstAuthResponse(greeting.plugin, '', Buffer.alloc(20), tls) !== null ? greeting.plugin : NATIVE;
    const scramble = greeting.scramble;
    const authData = firstAuthResponse(plugin, target.password, scramble, tls) ?? Buffer.alloc(0);
    if (plugin === CLEAR && !tls && !isLoopback(splitHostPort(target.address).host)) return fail('upstream asks for the password in clear text without TLS; refused');
    socket.write(
      encode(
        buildHandshakeResponse({
          capabilities: caps,
          charset: o.charset,
          user: target.user,
          authData,
          database: target.database,
          plugin,
          attributes: { _client_name: 'gatehouse', program_name: 'gatehouse', ...o.attributes },
        }),
        seq++,
      ),
    );
    const auth = await authenticate(socket, reader, { plugin, scramble, password: target.password, tls, address: target.address, seq });
    if (!auth.ok) return auth;
    const leftover = reader.detach();
    if (leftover.length > 0) return fail('upstream sent data after its login answer');
    return {
      ok: true,
      value: {
        socket,
        capabilities: caps,
        status: auth.value.status,
        serverVersion: greeting.serverVersion,
        connectionId: greeting.connectionId,
        scramble: auth.value.scramble,
        tls,
      },
    };
  } catch (e) {
    return fail(`upstream login failed: ${(e as Error).message}`);
  } finally {
    clearTimeout(timer);
    if (socket.destroyed || raw.destroyed) socket.destroy();
  }
}

export interface AuthState {
  plugin: string;
  scramble: Buffer;
  password: string;
  tls: boolean;
  address: string;
  /** Sequence id of the next packet the gateway sends. */
  seq: number;
}

/**
 * The authentication exchange after the gateway's first answer (handshake response or
 * COM_CHANGE_USER), until OK or ERR: auth switch, caching_sha2 fast/full paths, RSA keys.
 */
export async function authenticate(socket: Socket, reader: PacketReader, s: AuthState): Promise<R<{ status: number; scramble: Buffer }>> {
  let { plugin, scramble } = s;
  let publicKeyRequested = false;
  for (let round = 0; round < 8; round++) {
    const p: Packet | null = await reader.next();
    if (!p) return fail('upstream closed the connection during login');
    const send = (payload: Buffer) => socket.write(encode(payload, p.seq + 1));
    const kind = p.payload[0];
    if (kind === 0x00) return { ok: true, value: { status: readOk(p.payload).status, scramble } };
    if (kind === 0xff) {
      const e = readErr(p.payload);
      return { ok: false, error: { code: e.code, sqlstate: e.sqlstate, message: e.message } };
    }
    if (kind === 0xfe) {
      const sw = readAuthSwitch(p.payload);
      plugin = sw.plugin;
      scramble = sw.data.length >= 20 ? sw.data.subarray(0, 20) : sw.data;
      if (plugin === CLEAR && !s.tls && !isLoopback(splitHostPort(s.address).host)) return fail('upstream asks for the password in clear text without TLS; refused');
      const data = firstAuthResponse(plugin, s.password, scramble, s.tls);
      if (data === null) return fail(`upstream asks for authentication plugin ${plugin}, which the gateway does not speak`);
      publicKeyRequested = plugin === SHA256_PASSWORD && !s.tls && s.password !== '';
      send(data);
      continue;
    }
    if (kind === 0x01) {
      const more = p.payload.subarray(1);
      if (plugin === CACHING_SHA2 && more.length === 1 && more[0] === 0x03) continue; // fast path: OK follows
      if (plugin === CACHING_SHA2 && more.length === 1 && more[0] === 0x04) {
        // Full authentication: the password itself, over TLS in clear, else RSA-encrypted.
        if (s.tls) send(Buffer.from(s.password + '\0', 'utf8'));
        else {
          publicKeyRequested = true;
          send(Buffer.from([0x02]));
        }
        continue;
      }
      if (publicKeyRequested && more.includes('-----BEGIN')) {
        publicKeyRequested = false;
        send(rsaEncryptPassword(s.password, scramble, Buffer.from(more)));
        continue;
      }
      return fail(`unexpected authentication data from upstream (${plugin})`);
    }
    return fail(`unexpected packet 0x${kind.toString(16)} from upstream during login`);
  }
  return fail('upstream login did not finish');
}

/** COM_CHANGE_USER to the gateway's own credential (after a caller's COM_CHANGE_USER or a reset). */
export function changeUserPacket(target: UpstreamTarget, scramble: Buffer, caps: number, charset: number): { payload: Buffer; plugin: string } {
  const plugin = CACHING_SHA2;
  const auth = firstAuthResponse(NATIVE, target.password, scramble, false) as Buffer;
  const parts = [
    Buffer.from([COM.CHANGE_USER]),
    Buffer.from(target.user + '\0', 'utf8'),
    Buffer.from([auth.length]),
    auth,
    Buffer.from(target.database + '\0', 'utf8'),
    Buffer.from([charset & 0xff, charset >> 8]),
    Buffer.from(NATIVE + '\0', 'utf8'),
  ];
  void caps;
  void plugin;
  return { payload: Buffer.concat(parts), plugin: NATIVE };
}
