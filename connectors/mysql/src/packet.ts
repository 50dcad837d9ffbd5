/**
 * The MySQL packet layer: a 4-byte header (3-byte little-endian payload length, 1-byte
 * sequence id) and a payload; a payload of 16 MiB − 1 or more continues in the next packet
 * (each full packet is followed by another, the last one shorter, possibly empty).
 *
 * `PacketFramer` implements the kit's `Framer`: it cuts a byte stream into *logical* packets.
 * A packet that lies whole inside one received chunk is handed out as views of that chunk
 * (no copy); only a packet split across chunks, or one made of continuation packets, is copied.
 */
import type { Framer } from '@gatehouse/connector-kit';

/** Largest payload of one physical packet; a payload this long continues in the next packet. */
export const MAX_PACKET = 0xffffff;

export interface Packet {
  /** Sequence id of the first physical packet. */
  readonly seq: number;
  /** Physical packets it was made of (1 unless ≥ 16 MiB − 1). */
  readonly parts: number;
  readonly payload: Buffer;
  /** Header and payload as received, when it is one physical packet (its seq byte may be rewritten to resend it). */
  readonly raw: Buffer | null;
}

/**
 * A packet whole inside a received chunk: offsets into it, the views made only when asked
 * for (a view costs more than the rest of framing a packet).
 */
class ChunkPacket implements Packet {
  readonly parts = 1;
  private payload_: Buffer | null = null;
  constructor(
    private readonly buf: Buffer,
    private readonly start: number,
    private readonly end: number,
    readonly seq: number,
  ) {}

  get payload(): Buffer {
    return (this.payload_ ??= this.buf.subarray(this.start + 4, this.end));
  }

  get raw(): Buffer {
    return this.buf.subarray(this.start, this.end);
  }
}

export interface PacketFramingError {
  code: 'too_large';
  length: number;
}

export class PacketFramer implements Framer<Packet> {
  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;
  private error_: PacketFramingError | null = null;

  /** `max`: largest logical payload accepted. */
  constructor(private readonly max: number) {}

  get error(): PacketFramingError | null {
    return this.error_;
  }

  push(chunk: Buffer): void {
    if (this.error_) return;
    if (this.pos >= this.buf.length) {
      this.buf = chunk;
      this.pos = 0;
    } else {
      // Keep only the unread tail (a partial packet) and append: the one copy we make.
      this.buf = Buffer.concat([this.buf.subarray(this.pos), chunk]);
      this.pos = 0;
    }
  }

  /** Bytes received and not yet handed out as packets. */
  get buffered(): number {
    return this.buf.length - this.pos;
  }

  /** Hand out the unread bytes (e.g. to the next owner of the socket). */
  detach(): Buffer {
    const rest = this.buf.subarray(this.pos);
    this.buf = Buffer.alloc(0);
    this.pos = 0;
    return rest;
  }

  next(): Packet | null {
    if (this.error_) return null;
    const b = this.buf;
    const start = this.pos;
    if (b.length - start < 4) return null;
    const len = b[start] | (b[start + 1] << 8) | (b[start + 2] << 16);
    if (len < MAX_PACKET) {
      if (len > this.max) return this.fail(len);
      const end = start + 4 + len;
      if (b.length < end) return null;
      this.pos = end;
      return new ChunkPacket(b, start, end, b[start + 3]);
    }
    // Continuation packets: find the end of the logical packet before copying anything.
    let p = start;
    let total = 0;
    let parts = 0;
    for (;;) {
      if (b.length - p < 4) return null;
      const l = b[p] | (b[p + 1] << 8) | (b[p + 2] << 16);
      total += l;
      parts++;
      if (total > this.max) return this.fail(total);
      if (b.length < p + 4 + l) return null;
      p += 4 + l;
      if (l < MAX_PACKET) break;
    }
    const payload = Buffer.allocUnsafe(total);
    let q = start;
    let w = 0;
    for (let i = 0; i < parts; i++) {
      const l = b[q] | (b[q + 1] << 8) | (b[q + 2] << 16);
      b.copy(payload, w, q + 4, q + 4 + l);
      w += l;
      q += 4 + l;
    }
    this.pos = p;
    return { seq: b[start + 3], parts, payload, raw: null };
  }

  private fail(length: number): null {
    this.error_ = { code: 'too_large', length };
    return null;
  }
}

/** Physical packets needed for a payload of `len` bytes. */
export function partsFor(len: number): number {
  return Math.floor(len / MAX_PACKET) + 1;
}

/**
 * The bytes of `payload` as packets starting at sequence id `seq` (split at 16 MiB − 1).
 * `raw`: the packet as received, reused (its seq byte rewritten) when it is one physical packet.
 */
export function encode(payload: Buffer, seq: number, raw: Buffer | null = null): Buffer {
  if (raw && raw.length === payload.length + 4 && payload.length < MAX_PACKET) {
    raw[3] = seq & 0xff;
    return raw;
  }
  const parts = partsFor(payload.length);
  const out = Buffer.allocUnsafe(payload.length + 4 * parts);
  let r = 0;
  let w = 0;
  for (let i = 0; i < parts; i++) {
    const l = Math.min(MAX_PACKET, payload.length - r);
    out[w] = l & 0xff;
    out[w + 1] = (l >> 8) & 0xff;
    out[w + 2] = (l >> 16) & 0xff;
    out[w + 3] = (seq + i) & 0xff;
    payload.copy(out, w + 4, r, r + l);
    w += 4 + l;
    r += l;
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Reading and writing payload fields

/** Sequential reader of a payload; throws RangeError past the end (a malformed packet). */
export class Reader {
  constructor(
    readonly b: Buffer,
    public pos = 0,
  ) {}

  get left(): number {
    return this.b.length - this.pos;
  }

  u8(): number {
    if (this.pos + 1 > this.b.length) throw new RangeError('packet too short');
    return this.b[this.pos++];
  }

  u16(): number {
    if (this.pos + 2 > this.b.length) throw new RangeError('packet too short');
    const v = this.b.readUInt16LE(this.pos);
    this.pos += 2;
    return v;
  }

  u24(): number {
    if (this.pos + 3 > this.b.length) throw new RangeError('packet too short');
    const v = this.b.readUIntLE(this.pos, 3);
    this.pos += 3;
    return v;
  }

  u32(): number {
    if (this.pos + 4 > this.b.length) throw new RangeError('packet too short');
    const v = this.b.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }

  /** A length-encoded integer; null for 0xFB (NULL in a text row). Values past 2^53 throw. */
  lenenc(): number | null {
    const first = this.u8();
    if (first < 0xfb) return first;
    if (first === 0xfb) return null;
    if (first === 0xfc) return this.u16();
    if (first === 0xfd) return this.u24();
    if (first === 0xfe) {
      if (this.pos + 8 > this.b.length) throw new RangeError('packet too short');
      const lo = this.b.readUInt32LE(this.pos);
      const hi = this.b.readUInt32LE(this.pos + 4);
      this.pos += 8;
      if (hi > 0x1fffff) throw new RangeError('length-encoded integer too large');
      return hi * 0x100000000 + lo;
    }
    throw new RangeError('invalid length-encoded integer');
  }

  /** lenenc-int as a non-null number. */
  lenencInt(): number {
    const v = this.lenenc();
    if (v === null) throw new RangeError('unexpected NULL');
    return v;
  }

  bytes(n: number): Buffer {
    if (n < 0 || this.pos + n > this.b.length) throw new RangeError('packet too short');
    const v = this.b.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  /** A length-encoded string's bytes. */
  lenencBytes(): Buffer {
    return this.bytes(this.lenencInt());
  }

  lenencString(): string {
    return this.lenencBytes().toString('utf8');
  }

  /** NUL-terminated string. */
  cstring(): string {
    const end = this.b.indexOf(0, this.pos);
    if (end < 0) throw new RangeError('unterminated string');
    const v = this.b.toString('utf8', this.pos, end);
    this.pos = end + 1;
    return v;
  }

  /** NUL-terminated, or to the end of the packet. */
  cstringOrRest(): string {
    const end = this.b.indexOf(0, this.pos);
    const stop = end < 0 ? this.b.length : end;
    const v = this.b.toString('utf8', this.pos, stop);
    this.pos = end < 0 ? stop : end + 1;
    return v;
  }

  rest(): Buffer {
    const v = this.b.subarray(this.pos);
    this.pos = this.b.length;
    return v;
  }
}

/** Bytes of a length-encoded integer. */
export function lenencInt(n: number): Buffer {
  if (n < 0xfb) return Buffer.from([n]);
  if (n < 0x10000) return Buffer.from([0xfc, n & 0xff, n >> 8]);
  if (n < 0x1000000) return Buffer.from([0xfd, n & 0xff, (n >> 8) & 0xff, n >> 16]);
  const b = Buffer.alloc(9);
  b[0] = 0xfe;
  b.writeUInt32LE(n % 0x100000000, 1);
  b.writeUInt32LE(Math.floor(n / 0x100000000), 5);
  return b;
}

export function lenencLength(n: number): number {
  return n < 0xfb ? 1 : n < 0x10000 ? 3 : n < 0x1000000 ? 4 : 9;
}

/** Write a length-encoded integer at `pos`; returns the position after it. */
export function writeLenenc(out: Buffer, pos: number, n: number): number {
  if (n < 0xfb) {
    out[pos] = n;
    return pos + 1;
  }
  if (n < 0x10000) {
    out[pos] = 0xfc;
    out.writeUInt16LE(n, pos + 1);
    return pos + 3;
  }
  if (n < 0x1000000) {
    out[pos] = 0xfd;
    out.writeUIntLE(n, pos + 1, 3);
    return pos + 4;
  }
  out[pos] = 0xfe;
  out.writeUInt32LE(n % 0x100000000, pos + 1);
  out.writeUInt32LE(Math.floor(n / 0x100000000), pos + 5);
  return pos + 9;
}

export function lenencString(s: string | Buffer): Buffer {
  const b = typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
  return Buffer.concat([lenencInt(b.length), b]);
}

export function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n);
  return b;
}

export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

// ---------------------------------------------------------------------------------------
// Generic response packets

export interface OkPacket {
  affectedRows: number;
  lastInsertId: number;
  status: number;
  warnings: number;
  info: string;
}

/** OK packet (0x00, or 0xFE closing a result set with CLIENT_DEPRECATE_EOF). */
export function readOk(payload: Buffer): OkPacket {
  const r = new Reader(payload, 1);
  const affectedRows = r.lenencInt();
  const lastInsertId = r.lenencInt();
  const status = r.left >= 2 ? r.u16() : 0;
  const warnings = r.left >= 2 ? r.u16() : 0;
  let info = '';
  if (r.left > 0) {
    try {
      const save = r.pos;
      info = r.lenencString();
      if (r.pos > payload.length) {
        r.pos = save;
        info = r.rest().toString('utf8');
      }
    } catch {
      info = '';
    }
  }
  return { affectedRows, lastInsertId, status, warnings, info };
}

/**
 * Status flags of a result terminator: an EOF packet (0xFE, warnings, status) without
 * CLIENT_DEPRECATE_EOF, an OK packet with a 0xFE header with it; or of a plain OK packet.
 */
export function statusOf(payload: Buffer, deprecateEof: boolean): number {
  if (payload[0] === 0xfe && !deprecateEof) return payload.length >= 5 ? payload.readUInt16LE(3) : 0;
  return readOk(payload).status;
}

export interface ErrPacket {
  code: number;
  sqlstate: string;
  message: string;
}

export function readErr(payload: Buffer): ErrPacket {
  const code = payload.length >= 3 ? payload.readUInt16LE(1) : 0;
  if (payload.length >= 9 && payload[3] === 0x23 /* # */) {
    return { code, sqlstate: payload.toString('latin1', 4, 9), message: payload.toString('utf8', 9) };
  }
  return { code, sqlstate: 'HY000', message: payload.toString('utf8', Math.min(3, payload.length)) };
}

export function errPayload(code: number, sqlstate: string, message: string): Buffer {
  const m = Buffer.from(message, 'utf8');
  const b = Buffer.alloc(9 + m.length);
  b[0] = 0xff;
  b.writeUInt16LE(code, 1);
  b[3] = 0x23;
  b.write(sqlstate.padEnd(5, '0').slice(0, 5), 4, 'latin1');
  m.copy(b, 9);
  return b;
}

export function okPayload(status: number, o: { affectedRows?: number; lastInsertId?: number; warnings?: number; info?: string; header?: number } = {}): Buffer {
  return Buffer.concat([
    Buffer.from([o.header ?? 0]),
    lenencInt(o.affectedRows ?? 0),
    lenencInt(o.lastInsertId ?? 0),
    u16(status),
    u16(o.warnings ?? 0),
    ...(o.info ? [Buffer.from(o.info, 'utf8')] : []),
  ]);
}

export function eofPayload(status: number, warnings = 0): Buffer {
  const b = Buffer.alloc(5);
  b[0] = 0xfe;
  b.writeUInt16LE(warnings, 1);
  b.writeUInt16LE(status, 3);
  return b;
}
