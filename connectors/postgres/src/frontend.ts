/**
 * Decoding of the client-facing (frontend) messages the gateway must understand. Only the
 * fields policy, masking and audit need are decoded; the message itself is forwarded as is.
 * Each function throws RangeError on a malformed body (the caller turns it into 08P01).
 */
import { Reader } from './wire.js';

/** Query: the SQL text. */
export function readQuery(msg: Buffer): string {
  return new Reader(msg, 5).cstring();
}

export interface ParseMsg {
  name: string;
  sql: string;
}

export function readParse(msg: Buffer): ParseMsg {
  const r = new Reader(msg, 5);
  const name = r.cstring();
  const sql = r.cstring();
  const n = r.int16();
  if (n < 0 || r.remaining < 4 * n) throw new RangeError('Parse: bad parameter type count');
  return { name, sql };
}

export interface BindMsg {
  portal: string;
  statement: string;
  /** The Bind message itself; parameters are decoded only when an audit event needs them. */
  raw: Buffer;
  /** Where the parameter formats start (after the two names): what a review binds to. */
  paramsAt: number;
}

/** Bind: names only (cheap); `bindParams` decodes the values later. Validates the layout. */
export function readBind(msg: Buffer): BindMsg {
  const r = new Reader(msg, 5);
  const portal = r.cstring();
  const statement = r.cstring();
  const paramsAt = r.pos;
  const nf = r.int16();
  if (nf < 0) throw new RangeError('Bind: bad format count');
  r.pos += 2 * nf;
  const np = r.int16();
  if (np < 0) throw new RangeError('Bind: bad parameter count');
  for (let i = 0; i < np; i++) {
    const len = r.int32();
    if (len > 0) r.bytes(len);
    else if (len < -1) throw new RangeError('Bind: bad parameter length');
  }
  const nr = r.int16();
  if (nr < 0 || r.remaining !== 2 * nr) throw new RangeError('Bind: bad result format count');
  return { portal, statement, raw: msg, paramsAt };
}

/** Longest parameter text kept in the audit trail, characters (binary: bytes shown as hex). */
export const PARAM_TEXT_CAP = 1024;
export const PARAM_BINARY_CAP = 64;
/** Parameters beyond this many are summarised, not listed. */
export const PARAMS_CAP = 100;

/** The Bind's parameter values for the audit: text as text, binary as `\x…` hex, capped. */
export function bindParams(raw: Buffer): (string | null)[] {
  const r = new Reader(raw, 5);
  r.skipCstring();
  r.skipCstring();
  const nf = r.int16();
  const formats: number[] = [];
  for (let i = 0; i < nf; i++) formats.push(r.int16());
  const np = r.int16();
  const out: (string | null)[] = [];
  for (let i = 0; i < np; i++) {
    const len = r.int32();
    if (len < 0) {
      if (i < PARAMS_CAP) out.push(null);
      continue;
    }
    const v = r.bytes(len);
    if (i >= PARAMS_CAP) continue;
    const binary = (nf === 1 ? formats[0] : nf === 0 ? 0 : formats[i]) === 1;
    out.push(binary ? hexParam(v) : capText(v.toString('utf8')));
  }
  if (np > PARAMS_CAP) out.push(`… ${np - PARAMS_CAP} more`);
  return out;
}

function capText(s: string): string {
  return s.length > PARAM_TEXT_CAP ? s.slice(0, PARAM_TEXT_CAP) + '…' : s;
}

function hexParam(v: Buffer): string {
  const shown = v.length > PARAM_BINARY_CAP ? v.subarray(0, PARAM_BINARY_CAP) : v;
  return '\\x' + shown.toString('hex') + (v.length > PARAM_BINARY_CAP ? '…' : '');
}

export interface TargetMsg {
  /** 'S' statement or 'P' portal. */
  kind: 'S' | 'P';
  name: string;
}

/** Describe and Close share a layout. */
export function readTarget(msg: Buffer): TargetMsg {
  const r = new Reader(msg, 5);
  const k = r.byte();
  if (k !== 0x53 && k !== 0x50) throw new RangeError('Describe/Close: bad target kind');
  return { kind: k === 0x53 ? 'S' : 'P', name: r.cstring() };
}

export function readExecute(msg: Buffer): { portal: string; maxRows: number } {
  const r = new Reader(msg, 5);
  return { portal: r.cstring(), maxRows: r.int32() };
}

export function readFunctionCall(msg: Buffer): { oid: number } {
  return { oid: new Reader(msg, 5).int32() };
}
