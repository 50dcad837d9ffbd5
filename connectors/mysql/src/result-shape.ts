/**
 * Result sets: column definitions (ColumnDefinition41) → a shape and, for a masked caller,
 * the masking plan by origin (`schema`, `org_table`, `org_name`: an alias never matters);
 * text rows (length-encoded strings) and binary rows (NULL bitmap and typed values) masked
 * with their lengths re-encoded. A binary value whose type cannot hold the masked text
 * (integers, floats, dates) becomes NULL — its bit set in the NULL bitmap (fail closed).
 */
import type { ColumnMaskPlan, ColumnOrigin, Masker } from '@gatehouse/core';
import { lenencLength, Reader, writeLenenc } from './packet.js';

export const TYPE = {
  DECIMAL: 0,
  TINY: 1,
  SHORT: 2,
  LONG: 3,
  FLOAT: 4,
  DOUBLE: 5,
  NULL: 6,
  TIMESTAMP: 7,
  LONGLONG: 8,
  INT24: 9,
  DATE: 10,
  TIME: 11,
  DATETIME: 12,
  YEAR: 13,
  NEWDATE: 14,
  VARCHAR: 15,
  BIT: 16,
  TIMESTAMP2: 17,
  DATETIME2: 18,
  TIME2: 19,
  JSON: 245,
  NEWDECIMAL: 246,
  ENUM: 247,
  SET: 248,
  TINY_BLOB: 249,
  MEDIUM_BLOB: 250,
  LONG_BLOB: 251,
  BLOB: 252,
  VAR_STRING: 253,
  STRING: 254,
  GEOMETRY: 255,
} as const;

const UNSIGNED_FLAG = 32;
/** Binary collation: bytes, not text. */
const BINARY_CHARSET = 63;

export interface Column {
  schema: string;
  table: string;
  orgTable: string;
  name: string;
  orgName: string;
  charset: number;
  type: number;
  flags: number;
  decimals: number;
}

export function readColumn(payload: Buffer): Column {
  const r = new Reader(payload);
  r.lenencBytes(); // catalog ("def")
  const schema = r.lenencString();
  const table = r.lenencString();
  const orgTable = r.lenencString();
  const name = r.lenencString();
  const orgName = r.lenencString();
  r.lenencInt(); // length of the fixed fields (0x0c)
  const charset = r.u16();
  r.u32(); // column length
  const type = r.u8();
  const flags = r.u16();
  const decimals = r.u8();
  return { schema, table, orgTable, name, orgName, charset, type, flags, decimals };
}

export interface ResultShape {
  columns: Column[];
  names: string[];
  /** Null when masking is inactive or masks no column of this result. */
  plan: ColumnMaskPlan | null;
  /** Indexes of columns whose text is an error or warning message (SHOW WARNINGS): masked as messages. */
  messages: number[] | null;
}

/** Origin of a result column: the table column it comes from, or null for an expression. */
export function originOf(c: Column): ColumnOrigin | null {
  if (!c.orgTable || !c.orgName) return null;
  return { schema: c.schema, table: c.orgTable, column: c.orgName };
}

export function shapeOf(columns: Column[], masker: Masker, messageMask: boolean): ResultShape {
  const names = columns.map((c) => c.name);
  let plan: ColumnMaskPlan | null = null;
  if (masker.active) {
    const p = masker.planColumns(
      names,
      columns.map((c) => originOf(c)),
    );
    if (p.any) plan = p;
  }
  let messages: number[] | null = null;
  if (messageMask && masker.active) {
    const i = names.findIndex((n) => n.toLowerCase() === 'message');
    if (i >= 0) messages = [i];
  }
  return { columns, names, plan, messages };
}

/** What masks one value of a row: the column plan, or (for messages) the message masker. */
export type CellMask = (v: string) => string | null;

function cellMasks(shape: ResultShape, messageMask: ((t: string) => string) | null): (CellMask | null)[] | null {
  if (!shape.plan && !shape.messages) return null;
  const out: (CellMask | null)[] = shape.plan ? [...shape.plan.columns] : new Array<CellMask | null>(shape.columns.length).fill(null);
  if (shape.messages && messageMask) for (const i of shape.messages) out[i] = messageMask;
  return out;
}

/**
 * A text-protocol row with its masked values replaced. Returns the same payload when nothing
 * changed. Throws RangeError when the row does not match its column count.
 */
export function maskTextRow(payload: Buffer, shape: ResultShape, messageMask: ((t: string) => string) | null): Buffer {
  const masks = cellMasks(shape, messageMask);
  const n = shape.columns.length;
  const r = new Reader(payload);
  let repl: (Buffer | null | undefined)[] | null = null;
  const starts = new Array<number>(n);
  const ends = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const fieldStart = r.pos;
    const len = r.lenenc();
    starts[i] = fieldStart;
    if (len === null) {
      ends[i] = r.pos;
      continue;
    }
    const vStart = r.pos;
    r.bytes(len);
    ends[i] = r.pos;
    const mask = masks?.[i];
    if (mask) {
      const s = payload.toString('utf8', vStart, vStart + len);
      const m = mask(s);
      if (m !== s) {
        repl ??= new Array(n);
        repl[i] = m === null || !isTextType(shape.columns[i].type) ? null : Buffer.from(m, 'utf8');
      }
    }
  }
  if (r.left !== 0) throw new RangeError('row longer than its columns');
  if (!repl) return payload;
  let size = 0;
  for (let i = 0; i < n; i++) {
    const x = repl[i];
    size += x === undefined ? ends[i] - starts[i] : x === null ? 1 : lenencLength(x.length) + x.length;
  }
  const out = Buffer.allocUnsafe(size);
  let w = 0;
  for (let i = 0; i < n; i++) {
    const x = repl[i];
    if (x === undefined) {
      payload.copy(out, w, starts[i], ends[i]);
      w += ends[i] - starts[i];
    } else if (x === null) out[w++] = 0xfb;
    else {
      w = writeLenenc(out, w, x.length);
      x.copy(out, w);
      w += x.length;
    }
  }
  return out;
}

/** Values of a text row (already masked) for the timeline sample: NULL as null, capped. */
export function sampleTextRow(payload: Buffer, n: number): (string | null)[] {
  const r = new Reader(payload);
  const out = new Array<string | null>(n);
  for (let i = 0; i < n; i++) {
    const len = r.lenenc();
    out[i] = len === null ? null : cap(payload.toString('utf8', r.pos, r.pos + Math.min(len, SAMPLE_VALUE_CAP * 4)));
    if (len !== null) r.bytes(len);
  }
  return out;
}

export const SAMPLE_VALUE_CAP = 64;
function cap(s: string): string {
  return s.length > SAMPLE_VALUE_CAP ? s.slice(0, SAMPLE_VALUE_CAP) + '…' : s;
}

// ---------------------------------------------------------------------------------------
// Binary protocol rows

/** Bytes a fixed-size binary value takes, or -1 for a length-prefixed one, -2 for a 1-byte-length-prefixed one. */
function fixedSize(type: number): number {
  switch (type) {
    case TYPE.TINY:
      return 1;
    case TYPE.SHORT:
    case TYPE.YEAR:
      return 2;
    case TYPE.LONG:
    case TYPE.INT24:
    case TYPE.FLOAT:
      return 4;
    case TYPE.LONGLONG:
    case TYPE.DOUBLE:
      return 8;
    case TYPE.NULL:
      return 0;
    case TYPE.DATE:
    case TYPE.DATETIME:
    case TYPE.TIMESTAMP:
    case TYPE.TIME:
    case TYPE.NEWDATE:
    case TYPE.TIMESTAMP2:
    case TYPE.DATETIME2:
    case TYPE.TIME2:
      return -2;
    default:
      return -1;
  }
}

/**
 * Reads past one binary-protocol value of `type` (a row cell or a statement parameter: the
 * same encoding) and returns where its bytes start; they end at `r.pos`.
 */
export function skipBinaryValue(r: Reader, type: number): number {
  const f = fixedSize(type);
  const l = f >= 0 ? f : f === -2 ? r.u8() : r.lenencInt();
  const start = r.pos;
  r.bytes(l);
  return start;
}

/** The text form of one binary value (as the text protocol would send it). */
export function binaryText(c: Column, b: Buffer, start: number, end: number): string {
  const unsigned = (c.flags & UNSIGNED_FLAG) !== 0;
  switch (c.type) {
    case TYPE.TINY:
      return String(unsigned ? b.readUInt8(start) : b.readInt8(start));
    case TYPE.SHORT:
    case TYPE.YEAR:
      return String(unsigned ? b.readUInt16LE(start) : b.readInt16LE(start));
    case TYPE.LONG:
    case TYPE.INT24:
      return String(unsigned ? b.readUInt32LE(start) : b.readInt32LE(start));
    case TYPE.LONGLONG:
      return String(unsigned ? b.readBigUInt64LE(start) : b.readBigInt64LE(start));
    case TYPE.FLOAT:
      return String(b.readFloatLE(start));
    case TYPE.DOUBLE:
      return String(b.readDoubleLE(start));
  }
  const f = fixedSize(c.type);
  if (f === -2) return temporalText(c.type, b, start, end);
  return b.toString(c.charset === BINARY_CHARSET ? 'latin1' : 'utf8', start, end);
}

function temporalText(type: number, b: Buffer, start: number, end: number): string {
  const len = end - start;
  const p2 = (n: number) => String(n).padStart(2, '0');
  if (type === TYPE.TIME || type === TYPE.TIME2) {
    if (len === 0) return '00:00:00';
    const neg = b[start] === 1;
    const days = b.readUInt32LE(start + 1);
    const h = days * 24 + b[start + 5];
    const s = `${neg ? '-' : ''}${p2(h)}:${p2(b[start + 6])}:${p2(b[start + 7])}`;
    return len >= 12 ? `${s}.${String(b.readUInt32LE(start + 8)).padStart(6, '0')}` : s;
  }
  if (len === 0) return '0000-00-00 00:00:00';
  const date = `${String(b.readUInt16LE(start)).padStart(4, '0')}-${p2(b[start + 2])}-${p2(b[start + 3])}`;
  if (len < 7) return date;
  const t = `${date} ${p2(b[start + 4])}:${p2(b[start + 5])}:${p2(b[start + 6])}`;
  return len >= 11 ? `${t}.${String(b.readUInt32LE(start + 7)).padStart(6, '0')}` : t;
}

/** Positions of each value of a binary row: [start, end] per column, or null for NULL. */
function binaryCells(payload: Buffer, shape: ResultShape): ([number, number, number] | null)[] {
  const n = shape.columns.length;
  if (payload[0] !== 0x00) throw new RangeError('binary row without its 0x00 header');
  const bitmapLen = (n + 9) >> 3;
  const r = new Reader(payload, 1);
  const bitmap = r.bytes(bitmapLen);
  const cells = new Array<[number, number, number] | null>(n);
  for (let i = 0; i < n; i++) {
    const bit = i + 2;
    if (bitmap[bit >> 3] & (1 << (bit & 7))) {
      cells[i] = null;
      continue;
    }
    const field = r.pos;
    const s = skipBinaryValue(r, shape.columns[i].type);
    cells[i] = [s, r.pos, field];
  }
  if (r.left !== 0) throw new RangeError('binary row longer than its columns');
  return cells;
}

/**
 * Types whose values clients read as text: the masked text can be written back as is. Any
 * other type (numbers, decimals, dates, BIT, JSON, GEOMETRY) is parsed by the client by its
 * type, where a masked text would fail or, worse, read as another value: it becomes NULL.
 */
export function isTextType(type: number): boolean {
  return type === TYPE.VARCHAR || type === TYPE.VAR_STRING || type === TYPE.STRING || (type >= TYPE.ENUM && type <= TYPE.BLOB);
}

/**
 * A binary-protocol row with its masked values replaced: string types get the masked text
 * (length re-encoded); any other type whose value the mask changes becomes NULL.
 */
export function maskBinaryRow(payload: Buffer, shape: ResultShape, messageMask: ((t: string) => string) | null): Buffer {
  const masks = cellMasks(shape, messageMask);
  const cells = binaryCells(payload, shape);
  if (!masks) return payload;
  const n = shape.columns.length;
  let repl: (Buffer | null | undefined)[] | null = null;
  for (let i = 0; i < n; i++) {
    const cell = cells[i];
    const mask = masks[i];
    if (!cell || !mask) continue;
    const c = shape.columns[i];
    const text = binaryText(c, payload, cell[0], cell[1]);
    const m = mask(text);
    if (m === text) continue;
    repl ??= new Array(n);
    repl[i] = m === null || !isTextType(c.type) ? null : Buffer.from(m, 'utf8');
  }
  if (!repl) return payload;
  const bitmapLen = (n + 9) >> 3;
  let size = 1 + bitmapLen;
  for (let i = 0; i < n; i++) {
    const cell = cells[i];
    if (!cell) continue;
    const x = repl[i];
    if (x === undefined) size += cell[1] - cell[2];
    else if (x !== null) size += lenencLength(x.length) + x.length;
  }
  const out = Buffer.allocUnsafe(size);
  out[0] = 0;
  payload.copy(out, 1, 1, 1 + bitmapLen);
  let w = 1 + bitmapLen;
  for (let i = 0; i < n; i++) {
    const cell = cells[i];
    if (!cell) continue;
    const x = repl[i];
    if (x === null) {
      const bit = i + 2;
      out[1 + (bit >> 3)] |= 1 << (bit & 7);
    } else if (x === undefined) {
      payload.copy(out, w, cell[2], cell[1]);
      w += cell[1] - cell[2];
    } else {
      w = writeLenenc(out, w, x.length);
      x.copy(out, w);
      w += x.length;
    }
  }
  return out.subarray(0, w);
}

export function sampleBinaryRow(payload: Buffer, shape: ResultShape): (string | null)[] {
  const cells = binaryCells(payload, shape);
  return cells.map((cell, i) => (cell ? cap(binaryText(shape.columns[i], payload, cell[0], Math.min(cell[1], cell[0] + SAMPLE_VALUE_CAP * 4))) : null));
}
