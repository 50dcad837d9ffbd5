/**
 * Masking of every backend message that can carry a value, not just DataRows: errors and
 * notices (message, detail, hint, context, …), LISTEN/NOTIFY payloads and ParameterStatus
 * values. A hostile caller otherwise reads a masked value through `RAISE NOTICE`, a cast
 * error, a unique-violation detail, `pg_notify` or `set_config('application_name', …)`.
 *
 * Only called for masked callers; a message that needs no change is returned as is.
 */
import type { Masker } from '@gatehouse/core';
import { B, message, Reader } from './wire.js';

/** Fields that never hold data: severity (S, V), SQLSTATE (C), source file / line / routine (F, L, R). */
const STRUCTURAL_FIELDS = new Set([0x53, 0x56, 0x43, 0x46, 0x4c, 0x52]);

export const MASKED = '[masked]';

/**
 * Free text of an error or notice, as a masked caller may see it: detectors, then the two
 * shapes in which PostgreSQL quotes column values itself — `Key (col)=(value)` of unique
 * and foreign-key violations, and `Failing row contains (…)` of NOT NULL / CHECK violations.
 */
export function maskMessageText(text: string, masker: Masker): string {
  let out = masker.maskText(text);
  if (out.includes('Failing row contains (')) out = out.replace(/Failing row contains \(.*\)/s, `Failing row contains (${MASKED})`);
  const key = /Key \(([^)]*)\)=\((.*)\)/s.exec(out);
  if (key && key[1].split(',').some((c) => masker.maskedColumn?.(unquote(c.trim())) != null)) {
    out = out.slice(0, key.index) + `Key (${key[1]})=(${MASKED})` + out.slice(key.index + key[0].length);
  }
  return out;
}

function unquote(name: string): string {
  return name.length > 1 && name.startsWith('"') && name.endsWith('"') ? name.slice(1, -1).replace(/""/g, '"') : name;
}

export interface MaskedNotice {
  bytes: Buffer;
  code: string;
  /** The (masked) primary message, for the audit trail. */
  message: string;
}

/** ErrorResponse / NoticeResponse with every free-text field masked. */
export function maskErrorMessage(msg: Buffer, masker: Masker): MaskedNotice {
  const fields: [number, string][] = [];
  let changed = false;
  let code = '';
  let text = '';
  const r = new Reader(msg, 5);
  while (r.pos < msg.length && msg[r.pos] !== 0) {
    const f = r.byte();
    const v = r.cstring();
    const m = STRUCTURAL_FIELDS.has(f) ? v : maskMessageText(v, masker);
    if (m !== v) changed = true;
    if (f === 0x43) code = v;
    else if (f === 0x4d) text = m;
    fields.push([f, m]);
  }
  if (!changed) return { bytes: msg, code, message: text };
  let body = '';
  for (const [f, v] of fields) body += String.fromCharCode(f) + v + '\0';
  return { bytes: message(msg[0], body + '\0'), code, message: text };
}

/** NotificationResponse: channel and payload masked (the sender's pid kept). */
export function maskNotification(msg: Buffer, masker: Masker): Buffer {
  const r = new Reader(msg, 5);
  const pid = r.int32();
  const channel = r.cstring();
  const payload = r.cstring();
  const c = maskMessageText(channel, masker);
  const p = maskMessageText(payload, masker);
  if (c === channel && p === payload) return msg;
  const body = Buffer.from(`\0\0\0\0${c}\0${p}\0`, 'utf8');
  body.writeInt32BE(pid, 0);
  return message(B.NotificationResponse, body);
}

/** ParameterStatus: the value masked (names are the server's own). */
export function maskParameterStatus(msg: Buffer, masker: Masker): Buffer {
  const r = new Reader(msg, 5);
  const name = r.cstring();
  const value = r.cstring();
  const v = maskMessageText(value, masker);
  return v === value ? msg : message(B.ParameterStatus, `${name}\0${v}\0`);
}
