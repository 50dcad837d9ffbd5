/**
 * What one result set looks like (RowDescription) and the masking plan for it, plus the
 * DataRow rewriting that applies the plan. Rows are only decoded when the plan masks
 * something (`plan.any`) or a timeline sample is being taken.
 */
import type { ColumnMaskPlan, ColumnOrigin, Masker } from '@gatehouse/core';
import { binaryToText, JSONB_OID, TEXTUAL_OIDS } from './binary-text.js';
import type { Catalog } from './catalog.js';
import { B, Reader } from './wire.js';

export interface ResultShape {
  names: string[];
  types: Int32Array;
  /** 0 text, 1 binary, per column. */
  formats: Uint8Array;
  /** Null when masking is inactive for the session or masks no column of this shape. */
  plan: ColumnMaskPlan | null;
  /** Some column names a table OID the catalog does not know (yet): traced by output name. */
  unresolved: boolean;
}

/**
 * Columns of a RowDescription and, for a masked caller, the masking plan. With a catalog,
 * each column's (table OID, attribute number) is resolved to `schema.table.column`, and
 * the plan follows the origin, not the output name.
 */
export function readRowDescription(msg: Buffer, masker: Masker, catalog: Catalog | null): ResultShape {
  const r = new Reader(msg, 5);
  const n = r.int16();
  if (n < 0) throw new RangeError('RowDescription: bad column count');
  const names = new Array<string>(n);
  const types = new Int32Array(n);
  const formats = new Uint8Array(n);
  const origins: (ColumnOrigin | null)[] | null = catalog ? new Array(n) : null;
  let unresolved = false;
  for (let i = 0; i < n; i++) {
    names[i] = r.cstring();
    const table = r.int32() >>> 0;
    const attnum = r.int16();
    if (origins && catalog) {
      const o = catalog.origin(table, attnum);
      if (o === undefined) unresolved = true;
      origins[i] = o ?? null;
    }
    types[i] = r.int32();
    r.pos += 6; // typlen, typmod
    formats[i] = r.int16() === 1 ? 1 : 0;
  }
  let plan: ColumnMaskPlan | null = null;
  if (masker.active) {
    const p = masker.planColumns(names, origins ?? undefined);
    if (p.any) plan = p;
  }
  return { names, types, formats, plan, unresolved };
}

/**
 * Apply the plan to one DataRow. Returns the same buffer when nothing changed, else a new
 * message with rewritten lengths. Never lets an unmasked value through: a binary value
 * whose type cannot carry the masked text becomes NULL.
 */
export function maskDataRow(msg: Buffer, shape: ResultShape): Buffer {
  const plan = shape.plan;
  if (!plan) return msg;
  const n = msg.readInt16BE(5);
  let pos = 7;
  // Replacements, allocated only on the first change: index → new value (null = SQL NULL).
  let repl: (Buffer | null | undefined)[] | null = null;
  for (let i = 0; i < n; i++) {
    const len = msg.readInt32BE(pos);
    pos += 4;
    if (len < 0) continue;
    const mask = i < plan.columns.length ? plan.columns[i] : null;
    if (mask) {
      const v = maskValue(mask, msg, pos, pos + len, shape.types[i], shape.formats[i]);
      if (v !== undefined) {
        repl ??= new Array(n);
        repl[i] = v;
      }
    }
    pos += len;
  }
  if (!repl) return msg;
  return rebuild(msg, n, repl);
}

/** undefined: unchanged; null: NULL; Buffer: new bytes. */
function maskValue(mask: (v: string) => string | null, b: Buffer, start: number, end: number, oid: number, format: number): Buffer | null | undefined {
  if (format === 0 || TEXTUAL_OIDS.has(oid)) {
    const s = b.toString('utf8', start, end);
    const m = mask(s);
    if (m === s) return undefined;
    return m === null ? null : Buffer.from(m, 'utf8');
  }
  if (oid === JSONB_OID && end > start && b[start] === 1) {
    const s = b.toString('utf8', start + 1, end);
    const m = mask(s);
    if (m === s) return undefined;
    // A masked JSON document is no longer valid JSON in general; NULL is the honest value.
    return null;
  }
  const text = binaryToText(oid, b, start, end);
  if (text === undefined) return null; // cannot judge it: fail closed
  return mask(text) === text ? undefined : null;
}

function rebuild(msg: Buffer, n: number, repl: (Buffer | null | undefined)[]): Buffer {
  let size = 7;
  let pos = 7;
  for (let i = 0; i < n; i++) {
    const len = msg.readInt32BE(pos);
    pos += 4 + (len > 0 ? len : 0);
    const r = repl[i];
    size += 4 + (r === undefined ? (len > 0 ? len : 0) : r === null ? 0 : r.length);
  }
  const out = Buffer.allocUnsafe(size);
  out[0] = B.DataRow;
  out.writeInt32BE(size - 1, 1);
  out.writeInt16BE(n, 5);
  let w = 7;
  pos = 7;
  for (let i = 0; i < n; i++) {
    const len = msg.readInt32BE(pos);
    pos += 4;
    const r = repl[i];
    if (r === undefined) {
      out.writeInt32BE(len, w);
      w += 4;
      if (len > 0) {
        msg.copy(out, w, pos, pos + len);
        w += len;
      }
    } else if (r === null) {
      out.writeInt32BE(-1, w);
      w += 4;
    } else {
      out.writeInt32BE(r.length, w);
      w += 4;
      r.copy(out, w);
      w += r.length;
    }
    if (len > 0) pos += len;
  }
  return out;
}

/** Longest value kept in a timeline sample, characters. */
export const SAMPLE_VALUE_CAP = 64;

/** One (already masked) row as text values for the timeline sample, capped. */
export function sampleRow(msg: Buffer, shape: ResultShape | null): (string | null)[] {
  const n = msg.readInt16BE(5);
  const out = new Array<string | null>(n);
  let pos = 7;
  for (let i = 0; i < n; i++) {
    const len = msg.readInt32BE(pos);
    pos += 4;
    if (len < 0) {
      out[i] = null;
      continue;
    }
    const oid = shape ? shape.types[i] : 25;
    const binary = shape ? shape.formats[i] === 1 : false;
    let s: string;
    if (!binary || TEXTUAL_OIDS.has(oid)) s = msg.toString('utf8', pos, pos + Math.min(len, SAMPLE_VALUE_CAP * 4));
    else s = binaryToText(oid, msg, pos, pos + len) ?? '\\x' + msg.toString('hex', pos, pos + Math.min(len, SAMPLE_VALUE_CAP / 2));
    out[i] = s.length > SAMPLE_VALUE_CAP ? s.slice(0, SAMPLE_VALUE_CAP) + '…' : s;
    pos += len;
  }
  return out;
}

/** Rows affected / returned, from a CommandComplete tag (`SELECT 5`, `INSERT 0 3`, `COPY 7`). */
export function commandRows(msg: Buffer): { tag: string; rows: number | undefined } {
  const tag = msg.toString('utf8', 5, msg.length - 1);
  const sp = tag.lastIndexOf(' ');
  if (sp < 0) return { tag, rows: undefined };
  const n = Number(tag.slice(sp + 1));
  return { tag, rows: Number.isInteger(n) ? n : undefined };
}
