/**
 * The gateway's own login to the upstream PostgreSQL: TLS per `sslmode`, then cleartext,
 * md5 or SCRAM-SHA-256 with the connector's credential. The caller never sees it; the
 * caller only gets the ParameterStatus messages, relayed, and gateway-issued key data.
 */
import { createHash } from 'node:crypto';
import type { Socket } from 'node:net';
import { connectTcp, secureUpstream } from '@gatehouse/connector-kit';
import { ok, splitHostPort, type Result } from '@gatehouse/core';
import { FrameReader, readOneByte } from './frame-reader.js';
import { ScramClient, type SaltedPasswordCache } from './scram.js';
import { B, cancelRequest, parseErrorFields, passwordMessage, Reader, saslInitialResponse, saslResponse, SSL_REQUEST, startupMessage, startupPacket } from './wire.js';

export interface UpstreamTarget {
  address: string;
  database: string;
  user: string;
  password?: string;
  sslmode: 'disable' | 'prefer' | 'require' | 'verify-full';
  /** PEM CA bundle for verify-full (already read from disk at start). */
  ca?: Buffer;
  scramCache: SaltedPasswordCache;
}

export interface UpstreamSession {
  socket: Socket;
  tls: boolean;
  /** ParameterStatus messages, as received, to relay to the caller. */
  parameterStatus: Buffer[];
  pid: number;
  secret: number;
}

/** SQLSTATE-bearing failure: code is the upstream's SQLSTATE, or 08001 when we could not connect. */
export interface UpstreamError {
  code: string;
  sqlstate: string;
  message: string;
}

const MAX_STARTUP_MESSAGE = 1 << 20;

export async function connectUpstream(t: UpstreamTarget, params: Record<string, string>, timeoutMs: number): Promise<Result<UpstreamSession, UpstreamError>> {
  const socket = await openSocket(t, timeoutMs);
  if (!socket.ok) return socket;
  const s = socket.value.socket;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    s.destroy();
  }, timeoutMs);
  let r: Result<Omit<UpstreamSession, 'socket' | 'tls'>, UpstreamError>;
  try {
    r = await login(s, t, params);
  } catch (e) {
    // A malformed login message (the Reader throws on truncation): never leak the socket.
    r = fail('08P01', `upstream protocol error: ${(e as Error).message}`);
  } finally {
    clearTimeout(timer);
  }
  if (!r.ok) {
    s.destroy();
    return timedOut ? fail('08001', `upstream login timed out after ${timeoutMs} ms`) : r;
  }
  return ok({ ...r.value, socket: s, tls: socket.value.tls });
}

async function openSocket(t: UpstreamTarget, timeoutMs: number): Promise<Result<{ socket: Socket; tls: boolean }, UpstreamError>> {
  const tcp = await connectTcp(t.address, timeoutMs);
  if (!tcp.ok) return fail('08001', tcp.error.message);
  const raw = tcp.value;
  if (t.sslmode === 'disable') return ok({ socket: raw, tls: false });
  const timer = setTimeout(() => raw.destroy(new Error('TLS negotiation timed out')), timeoutMs);
  try {
    raw.write(startupPacket(SSL_REQUEST));
    const answer = await readOneByte(raw);
    if (!answer) return fail('08001', 'upstream closed during TLS negotiation');
    if (answer.extra) {
      raw.destroy();
      return fail('08P01', 'upstream sent unexpected data after the SSL response');
    }
    if (answer.byte !== 0x53) {
      if (t.sslmode === 'prefer') {
        raw.resume();
        return ok({ socket: raw, tls: false });
      }
      raw.destroy();
      return fail('08001', `upstream refused TLS (sslmode=${t.sslmode})`);
    }
    const secure = await secureUpstream(raw, { host: splitHostPort(t.address).host, verify: t.sslmode === 'verify-full', ca: t.ca });
    if (!secure.ok) return fail('08001', secure.error.message);
    return ok({ socket: secure.value, tls: true });
  } finally {
    clearTimeout(timer);
  }
}

async function login(s: Socket, t: UpstreamTarget, params: Record<string, string>): Promise<Result<Omit<UpstreamSession, 'socket' | 'tls'>, UpstreamError>> {
  const reader = new FrameReader(s, MAX_STARTUP_MESSAGE);
  s.resume();
  s.write(startupMessage({ ...params, user: t.user, database: t.database }));
  const parameterStatus: Buffer[] = [];
  let pid = 0;
  let secret = 0;
  let scram: ScramClient | null = null;
  for (;;) {
    const f = await reader.next();
    if (!f) {
      reader.detach();
      return fail('08006', 'upstream closed the connection during login');
    }
    switch (f.type) {
      case B.Authentication: {
        const r = new Reader(f.bytes, 5);
        const code = r.int32();
        if (code === 0) {
          // AuthenticationOk in the middle of SCRAM would skip the server's proof that it
          // knows the password; libpq refuses it too.
          if (scram && !scram.verified) {
            reader.detach();
            return fail('28000', 'upstream reported success before completing SCRAM authentication');
          }
          break;
        }
        if (scram && code !== 11 && code !== 12) return protocol(reader, `authentication request ${code} in the middle of SCRAM`);
        if (code === 3) {
          if (t.password === undefined) return noPassword(reader);
          s.write(passwordMessage(t.password));
        } else if (code === 5) {
          if (t.password === undefined) return noPassword(reader);
          s.write(passwordMessage(md5Password(t.user, t.password, r.bytes(4))));
        } else if (code === 10) {
          if (t.password === undefined) return noPassword(reader);
          const mechs: string[] = [];
          for (let m = r.cstring(); m !== ''; m = r.cstring()) mechs.push(m);
          if (!mechs.includes('SCRAM-SHA-256')) {
            reader.detach();
            return fail('28000', `upstream offers no supported SASL mechanism (${mechs.join(', ')})`);
          }
          scram = new ScramClient(t.password, t.scramCache);
          s.write(saslInitialResponse('SCRAM-SHA-256', scram.clientFirst()));
        } else if (code === 11) {
          if (!scram) return protocol(reader, 'SASLContinue without SASL');
          const final = await scram.clientFinal(f.bytes.toString('utf8', 9));
          if (!final.ok) {
            reader.detach();
            return fail('28000', final.error.message);
          }
          s.write(saslResponse(final.value));
        } else if (code === 12) {
          if (!scram) return protocol(reader, 'SASLFinal without SASL');
          const v = scram.verifyServerFinal(f.bytes.toString('utf8', 9));
          if (!v.ok) {
            reader.detach();
            return fail('28000', v.error.message);
          }
        } else {
          reader.detach();
          return fail('28000', `upstream asks for an unsupported authentication method (${code})`);
        }
        break;
      }
      case B.ParameterStatus:
        parameterStatus.push(Buffer.from(f.bytes));
        break;
      case B.BackendKeyData: {
        const r = new Reader(f.bytes, 5);
        pid = r.int32();
        secret = r.int32();
        break;
      }
      case B.NoticeResponse:
      case B.NegotiateProtocolVersion:
        break;
      case B.ErrorResponse: {
        reader.detach();
        const e = parseErrorFields(f.bytes);
        return fail(e.code || '08006', `upstream refused the login: ${e.message}`);
      }
      case B.ReadyForQuery: {
        const left = reader.detach();
        s.pause();
        if (left > 0) return fail('08P01', 'upstream sent data after ReadyForQuery');
        return ok({ parameterStatus, pid, secret });
      }
      default:
        return protocol(reader, `unexpected message ${String.fromCharCode(f.type)} during login`);
    }
  }
}

function md5Password(user: string, password: string, salt: Buffer): string {
  const inner = createHash('md5')
    .update(password + user, 'utf8')
    .digest('hex');
  return (
    'md5' +
    createHash('md5')
      .update(Buffer.concat([Buffer.from(inner, 'utf8'), salt]))
      .digest('hex')
  );
}

function fail(sqlstate: string, message: string): Result<never, UpstreamError> {
  return { ok: false, error: { code: 'upstream.connect', sqlstate, message } };
}

function noPassword(reader: FrameReader): Result<never, UpstreamError> {
  reader.detach();
  return fail('28000', 'upstream requires a password and the connector has none configured');
}

function protocol(reader: FrameReader, message: string): Result<never, UpstreamError> {
  reader.detach();
  return fail('08P01', `upstream protocol error: ${message}`);
}

/** Send a CancelRequest for an upstream backend (fire and forget, as PostgreSQL does). */
export async function sendCancel(t: UpstreamTarget, pid: number, secret: number, timeoutMs: number): Promise<void> {
  // PostgreSQL reads a CancelRequest before authentication; TLS only when the upstream insists.
  const sock = await openSocket({ ...t, sslmode: t.sslmode === 'prefer' ? 'disable' : t.sslmode }, timeoutMs);
  if (!sock.ok) return;
  const s = sock.value.socket;
  const timer = setTimeout(() => s.destroy(), timeoutMs);
  s.once('close', () => clearTimeout(timer));
  s.on('error', () => {});
  s.resume();
  s.end(cancelRequest(pid, secret));
}
