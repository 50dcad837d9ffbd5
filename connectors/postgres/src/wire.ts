/**
 * Small PostgreSQL wire helpers: message type codes, a read cursor, and builders for the
 * few messages the gateway writes itself (everything else is forwarded as received bytes).
 */

/** Frontend (client → server) message types. */
export const F = {
  Query: 0x51, // Q
  Parse: 0x50, // P
  Bind: 0x42, // B
  Describe: 0x44, // D
  Execute: 0x45, // E
  Sync: 0x53, // S
  Flush: 0x48, // H
  Close: 0x43, // C
  CopyData: 0x64, // d
  CopyDone: 0x63, // c
  CopyFail: 0x66, // f
  FunctionCall: 0x46, // F
  Terminate: 0x58, // X
  Password: 0x70, // p
} as const;

/** Backend (server → client) message types. */
export const B = {
  Authentication: 0x52, // R
  BackendKeyData: 0x4b, // K
  ParameterStatus: 0x53, // S
  ReadyForQuery: 0x5a, // Z
  RowDescription: 0x54, // T
  DataRow: 0x44, // D
  CommandComplete: 0x43, // C
  EmptyQueryResponse: 0x49, // I
  ErrorResponse: 0x45, // E
  NoticeResponse: 0x4e, // N
  NotificationResponse: 0x41, // A
  ParseComplete: 0x31, // 1
  BindComplete: 0x32, // 2
  CloseComplete: 0x33, // 3
  NoData: 0x6e, // n
  ParameterDescription: 0x74, // t
  PortalSuspended: 0x73, // s
  CopyInResponse: 0x47, // G
  CopyOutResponse: 0x48, // H
  CopyBothResponse: 0x57, // W
  CopyData: 0x64, // d
  CopyDone: 0x63, // c
  FunctionCallResponse: 0x56, // V
  NegotiateProtocolVersion: 0x76, // v
} as const;

/** Untyped startup-phase request codes. */
export const PROTOCOL_3_0 = 196608;
export const SSL_REQUEST = 80877103;
export const GSSENC_REQUEST = 80877104;
export const CANCEL_REQUEST = 80877102;

/** Reads fields of one message body. Throws RangeError on truncation: callers catch once. */
export class Reader {
  constructor(
    readonly buf: Buffer,
    public pos: number,
    readonly end: number = buf.length,
  ) {}

  int16(): number {
    if (this.pos + 2 > this.end) throw new RangeError('message truncated');
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  int32(): number {
    if (this.pos + 4 > this.end) throw new RangeError('message truncated');
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  byte(): number {
    if (this.pos >= this.end) throw new RangeError('message truncated');
    return this.buf[this.pos++];
  }

  /** A NUL-terminated UTF-8 string. */
  cstring(): string {
    const nul = this.buf.indexOf(0, this.pos);
    if (nul < 0 || nul >= this.end) throw new RangeError('unterminated string');
    const s = this.buf.toString('utf8', this.pos, nul);
    this.pos = nul + 1;
    return s;
  }

  /** Skip a NUL-terminated string; returns its [start, end) for callers that only compare. */
  skipCstring(): number {
    const nul = this.buf.indexOf(0, this.pos);
    if (nul < 0 || nul >= this.end) throw new RangeError('unterminated string');
    const start = this.pos;
    this.pos = nul + 1;
    return start;
  }

  bytes(n: number): Buffer {
    if (n < 0 || this.pos + n > this.end) throw new RangeError('message truncated');
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  get remaining(): number {
    return this.end - this.pos;
  }
}

/** A typed message with the given body. */
export function message(type: number, body: Buffer | string): Buffer {
  const b = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  const out = Buffer.allocUnsafe(5 + b.length);
  out[0] = type;
  out.writeInt32BE(4 + b.length, 1);
  b.copy(out, 5);
  return out;
}

function int32Message(type: number, ...values: number[]): Buffer {
  const out = Buffer.allocUnsafe(5 + 4 * values.length);
  out[0] = type;
  out.writeInt32BE(4 + 4 * values.length, 1);
  values.forEach((v, i) => out.writeInt32BE(v, 5 + 4 * i));
  return out;
}

export const authenticationOk = (): Buffer => int32Message(B.Authentication, 0);
export const authenticationCleartextPassword = (): Buffer => int32Message(B.Authentication, 3);
export const backendKeyData = (pid: number, secret: number): Buffer => int32Message(B.BackendKeyData, pid, secret);

export function readyForQuery(status: 'I' | 'T' | 'E'): Buffer {
  return Buffer.from([B.ReadyForQuery, 0, 0, 0, 5, status.charCodeAt(0)]);
}

export interface ErrorFields {
  severity?: 'ERROR' | 'FATAL' | 'NOTICE';
  /** SQLSTATE. */
  code: string;
  message: string;
  detail?: string;
  hint?: string;
}

/** ErrorResponse (or, with type N, NoticeResponse). Values must not hold secrets. */
export function errorResponse(f: ErrorFields, type: number = B.ErrorResponse): Buffer {
  const sev = f.severity ?? 'ERROR';
  let body = `S${sev}\0V${sev}\0C${f.code}\0M${f.message}\0`;
  if (f.detail) body += `D${f.detail}\0`;
  if (f.hint) body += `H${f.hint}\0`;
  return message(type, body + '\0');
}

/** SQLSTATE and message of an ErrorResponse/NoticeResponse (for the audit trail). */
export function parseErrorFields(msg: Buffer): { code: string; message: string } {
  let code = '';
  let text = '';
  let pos = 5;
  while (pos < msg.length && msg[pos] !== 0) {
    const field = msg[pos];
    const nul = msg.indexOf(0, pos + 1);
    if (nul < 0) break;
    if (field === 0x43) code = msg.toString('utf8', pos + 1, nul);
    else if (field === 0x4d) text = msg.toString('utf8', pos + 1, nul);
    pos = nul + 1;
  }
  return { code, message: text };
}

/** Untyped startup-phase packet: int32 length, int32 code, body. */
export function startupPacket(code: number, body: Buffer = Buffer.alloc(0)): Buffer {
  const out = Buffer.allocUnsafe(8 + body.length);
  out.writeInt32BE(8 + body.length, 0);
  out.writeInt32BE(code, 4);
  body.copy(out, 8);
  return out;
}

export function startupMessage(params: Record<string, string>): Buffer {
  let body = '';
  for (const [k, v] of Object.entries(params)) body += `${k}\0${v}\0`;
  return startupPacket(PROTOCOL_3_0, Buffer.from(body + '\0', 'utf8'));
}

export function cancelRequest(pid: number, secret: number): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeInt32BE(pid, 0);
  b.writeInt32BE(secret, 4);
  return startupPacket(CANCEL_REQUEST, b);
}

export const passwordMessage = (password: string): Buffer => message(F.Password, password + '\0');

export function saslInitialResponse(mechanism: string, data: Buffer): Buffer {
  const mech = Buffer.from(mechanism + '\0', 'utf8');
  const len = Buffer.allocUnsafe(4);
  len.writeInt32BE(data.length, 0);
  return message(F.Password, Buffer.concat([mech, len, data]));
}

export const saslResponse = (data: Buffer): Buffer => message(F.Password, data);

/** NegotiateProtocolVersion: we speak 3.0 and none of the `_pq_.` options asked for. */
export function negotiateProtocolVersion(minor: number, unsupported: string[]): Buffer {
  const head = Buffer.allocUnsafe(8);
  head.writeInt32BE(minor, 0);
  head.writeInt32BE(unsupported.length, 4);
  return message(B.NegotiateProtocolVersion, Buffer.concat([head, ...unsupported.map((s) => Buffer.from(s + '\0', 'utf8'))]));
}

/** Frontend extended-protocol messages the gateway injects upstream. */
export function parseMessage(name: string, sql: string): Buffer {
  return message(F.Parse, Buffer.concat([Buffer.from(`${name}\0${sql}\0`, 'utf8'), Buffer.from([0, 0])]));
}

export function bindMessage(portal: string, statement: string): Buffer {
  return message(F.Bind, Buffer.concat([Buffer.from(`${portal}\0${statement}\0`, 'utf8'), Buffer.from([0, 0, 0, 0, 0, 0])]));
}

export function executeMessage(portal: string): Buffer {
  return message(F.Execute, Buffer.concat([Buffer.from(`${portal}\0`, 'utf8'), Buffer.from([0, 0, 0, 0])]));
}

export function describePortalMessage(portal: string): Buffer {
  return message(F.Describe, `P${portal}\0`);
}

export const queryMessage = (sql: string): Buffer => message(F.Query, sql + '\0');
