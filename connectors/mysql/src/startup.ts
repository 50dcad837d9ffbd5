/**
 * The caller's connection phase: the gateway's greeting (protocol 10), the SSL request and
 * TLS (the kit's ServerTls), the handshake response, and getting the caller's token as its
 * password:
 *
 * - `caching_sha2_password` (what the greeting offers, and what an auth switch asks for): the
 *   gateway always answers "perform full authentication", so the client sends the password
 *   itself — in clear inside TLS, or RSA-encrypted with the connector's key on loopback.
 * - `mysql_clear_password`: the password as sent, on TLS or loopback only.
 * - anything else (`mysql_native_password`, …): switched to caching_sha2_password; a client
 *   that cannot switch plugins at all gets an error saying how to connect.
 *
 * The bytes a caller sends right behind its SSL request are the TLS ClientHello: they are
 * handed back to the socket for the TLS layer, which reads them as TLS records — never as
 * MySQL packets (the bytes-behind-upgrade rule: nothing sent in clear is read as protected).
 */
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import type { ServerTls } from '@gatehouse/connector-kit';
import { encode, errPayload } from './packet.js';
import { PacketReader } from './packet-reader.js';
import {
  authSwitchRequest,
  buildGreeting,
  CACHING_SHA2,
  CAP,
  CLEAR,
  GATEWAY_CAPABILITIES,
  isSslRequest,
  readHandshakeResponse,
  rsaDecryptPassword,
  UTF8MB4_GENERAL_CI,
  type HandshakeResponse,
} from './protocol.js';

/** Largest packet accepted before login: a JWT of a few KiB fits many times over. */
const MAX_LOGIN_PACKET = 64 * 1024;

export interface CallerKeys {
  /** PEM, for callers that ask for it (caching_sha2_password without TLS, on loopback). */
  publicKey: string;
  privateKey: string;
}

export type LoginOutcome =
  | {
      kind: 'password';
      socket: Socket;
      tls: boolean;
      response: HandshakeResponse;
      /** The caller's token; null when a certificate may identify it instead (no password round yet). */
      token: string;
      /** Sequence id of the gateway's next packet (the final OK or ERR). */
      seq: number;
      reader: PacketReader;
    }
  | {
      kind: 'certificate';
      socket: Socket;
      tls: true;
      response: HandshakeResponse;
      seq: number;
      reader: PacketReader;
      askPassword: () => Promise<{ token: string; seq: number } | null>;
    }
  /** Refused: `error` for the log/audit; `reply` already sent (or nothing, when the caller left). */
  | { kind: 'refused'; socket: Socket; error: string; tls: boolean; quiet?: boolean; meta?: Record<string, unknown>; response?: HandshakeResponse };

export interface LoginOptions {
  tls: ServerTls;
  keys: CallerKeys;
  serverVersion: string;
  connectionId: number;
  /** Clear text is allowed (loopback). */
  loopback: boolean;
}

/** 20 random bytes, none of them NUL (some clients treat the scramble as a C string). */
export function newScramble(): Buffer {
  const b = randomBytes(20);
  for (let i = 0; i < b.length; i++) b[i] = (b[i] % 94) + 33;
  return b;
}

export const ERR = {
  ACCESS_DENIED: 1045,
  HANDSHAKE: 1043,
  NOT_SUPPORTED_AUTH_MODE: 1251,
  SECURE_TRANSPORT_REQUIRED: 3159,
} as const;

/** ERR packet at `seq`, then end the socket (the caller should read it). */
export function refuseWith(socket: Socket, seq: number, code: number, sqlstate: string, message: string): void {
  if (socket.destroyed) return;
  socket.end(encode(errPayload(code, sqlstate, message), seq));
  setTimeout(() => socket.destroy(), 1000).unref();
}

export async function callerLogin(raw: Socket, o: LoginOptions): Promise<LoginOutcome> {
  const scramble = newScramble();
  raw.write(
    encode(
      buildGreeting({
        serverVersion: o.serverVersion,
        connectionId: o.connectionId,
        scramble,
        capabilities: GATEWAY_CAPABILITIES,
        charset: UTF8MB4_GENERAL_CI,
        status: 0x0002,
        plugin: CACHING_SHA2,
      }),
      0,
    ),
  );
  let socket: Socket = raw;
  let reader = new PacketReader(raw, MAX_LOGIN_PACKET);
  let tls = false;
  let p = await reader.next();
  if (!p && reader.oversized) return refuse(socket, 2, ERR.HANDSHAKE, '08S01', 'bad handshake: a packet over the login size limit (not a MySQL client?)', tls);
  if (!p) return { kind: 'refused', socket, error: 'client closed before its handshake response', tls, quiet: true };
  if (p.seq !== 1) return refuse(socket, 2, ERR.HANDSHAKE, '08S01', `handshake response out of sequence (${p.seq})`, tls);
  if (isSslRequest(p.payload)) {
    // The ClientHello may already be here, behind the request: it goes to TLS, not to us.
    const behind = reader.detach();
    if (behind.length > 0) raw.unshift(behind);
    const up = await o.tls.upgrade(raw);
    if (!up.ok)
      return {
        kind: 'refused',
        socket: raw,
        error: up.error,
        tls: true,
        quiet: /closed/.test(up.error) && up.code === undefined,
        ...(up.code !== undefined ? { meta: { code: up.code } } : {}),
      };
    socket = up.socket;
    tls = true;
    reader = new PacketReader(socket, MAX_LOGIN_PACKET);
    p = await reader.next();
    if (!p && reader.oversized) return refuse(socket, 3, ERR.HANDSHAKE, '08S01', 'bad handshake: a packet over the login size limit', tls);
    if (!p) return { kind: 'refused', socket, error: 'client closed after TLS without a handshake response', tls, quiet: true };
    if (p.seq !== 2) return refuse(socket, 3, ERR.HANDSHAKE, '08S01', `handshake response out of sequence (${p.seq})`, tls);
  }
  let response: HandshakeResponse;
  try {
    response = readHandshakeResponse(p.payload);
  } catch (e) {
    return refuse(socket, p.seq + 1, ERR.HANDSHAKE, '08S01', `malformed handshake response: ${(e as Error).message}`, tls);
  }
  const seq = p.seq + 1;
  if (!tls && o.tls.clientAuth)
    return refuse(
      socket,
      seq,
      ERR.SECURE_TRANSPORT_REQUIRED,
      '28000',
      'TLS with a client certificate is required on this connector (--ssl with a client certificate)',
      tls,
      response,
    );
  if (!tls && !o.loopback)
    return refuse(
      socket,
      seq,
      ERR.SECURE_TRANSPORT_REQUIRED,
      '28000',
      'TLS is required: the password is a token and is never accepted in clear text off loopback (connect with --ssl / ssl: {})',
      tls,
      response,
    );
  if (!(response.capabilities & CAP.PLUGIN_AUTH) || !(response.capabilities & CAP.SECURE_CONNECTION)) {
    return refuse(
      socket,
      seq,
      ERR.NOT_SUPPORTED_AUTH_MODE,
      '08004',
      'this client only speaks mysql_native_password, which cannot carry a token; use a client with caching_sha2_password over TLS (mysql/mariadb --ssl, mysql2 with ssl), or mysql_clear_password (--enable-cleartext-plugin) over TLS',
      tls,
      response,
    );
  }
  const io: Io = { socket, reader, seq, scramble, tls, keys: o.keys };
  if (tls && o.tls.clientAuth) {
    // A mapped certificate may log in without a password; the round is only run when asked.
    return {
      kind: 'certificate',
      socket,
      tls: true,
      response,
      seq,
      reader,
      askPassword: async () => {
        const token = await passwordRounds(io, response);
        return token === null ? null : { token, seq: io.seq };
      },
    };
  }
  const token = await passwordRounds(io, response);
  if (token === null) return { kind: 'refused', socket, error: io.error ?? 'no password', tls, quiet: io.quiet, response };
  return { kind: 'password', socket, tls, response, token, seq: io.seq, reader };
}

interface Io {
  socket: Socket;
  reader: PacketReader;
  seq: number;
  scramble: Buffer;
  tls: boolean;
  keys: CallerKeys;
  error?: string;
  quiet?: boolean;
}

/** The password rounds after the handshake response; null (with io.error, ERR sent) when refused. */
async function passwordRounds(io: Io, response: HandshakeResponse): Promise<string | null> {
  const deny = (code: number, sqlstate: string, message: string, quiet = false): null => {
    io.error = message;
    io.quiet = quiet;
    if (!quiet) refuseWith(io.socket, io.seq, code, sqlstate, `gatehouse: ${message}`);
    return null;
  };
  const send = (payload: Buffer) => io.socket.write(encode(payload, io.seq++));
  const read = async () => {
    const p = await io.reader.next();
    if (!p) return null;
    if (p.seq !== io.seq % 256) return 'out of sequence' as const;
    io.seq++;
    return p.payload;
  };
  const plugin = response.plugin ?? CACHING_SHA2;
  if (plugin === CLEAR) return stripNul(response.authData);
  let data: Buffer = response.authData;
  if (plugin !== CACHING_SHA2) {
    send(authSwitchRequest(CACHING_SHA2, Buffer.concat([io.scramble, Buffer.from([0])])));
    const r = await read();
    if (r === null)
      return deny(
        ERR.NOT_SUPPORTED_AUTH_MODE,
        '08004',
        `client (plugin ${plugin}) left when asked for caching_sha2_password; connect with a client that supports it, over TLS`,
        true,
      );
    if (r === 'out of sequence') return deny(ERR.HANDSHAKE, '08S01', 'authentication packet out of sequence');
    data = r;
  }
  if (data.length === 0 || (data.length === 1 && data[0] === 0)) return deny(ERR.ACCESS_DENIED, '28000', 'a token is required as the password');
  // Always the full path: the gateway needs the token itself, not a proof of knowing it.
  send(Buffer.from([0x01, 0x04]));
  let r = await read();
  if (r === null) return deny(ERR.HANDSHAKE, '08S01', 'client left during authentication', true);
  if (r === 'out of sequence') return deny(ERR.HANDSHAKE, '08S01', 'authentication packet out of sequence');
  if (io.tls) return stripNul(r);
  if (r.length === 1 && r[0] === 0x02) {
    send(Buffer.concat([Buffer.from([0x01]), Buffer.from(io.keys.publicKey)]));
    r = await read();
    if (r === null) return deny(ERR.HANDSHAKE, '08S01', 'client left during authentication', true);
    if (r === 'out of sequence') return deny(ERR.HANDSHAKE, '08S01', 'authentication packet out of sequence');
  }
  const token = rsaDecryptPassword(r, io.scramble, io.keys.privateKey);
  if (token === null) return deny(ERR.ACCESS_DENIED, '28000', 'the password could not be decrypted (caching_sha2_password without TLS needs the RSA key exchange)');
  return token;
}

function stripNul(b: Buffer): string {
  const end = b.indexOf(0);
  return b.toString('utf8', 0, end < 0 ? b.length : end);
}

function refuse(socket: Socket, seq: number, code: number, sqlstate: string, message: string, tls: boolean, response?: HandshakeResponse): LoginOutcome {
  refuseWith(socket, seq, code, sqlstate, `gatehouse: ${message}`);
  return { kind: 'refused', socket, error: message, tls, ...(response ? { response } : {}) };
}
