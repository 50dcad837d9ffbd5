/**
 * Masking of the free text a MySQL server sends back: ERR packet messages (a duplicate key
 * quotes the value: `Duplicate entry '4111…' for key 'card'`; a conversion error quotes it
 * too: `Incorrect integer value: '…' for column`), and the Message column of SHOW WARNINGS /
 * SHOW ERRORS, which repeats the same texts. Detectors run on all of it; the values MySQL
 * quotes itself in these shapes are masked whole, whatever they look like.
 */
import type { Masker } from '@gatehouse/core';
import { errPayload, readErr, type ErrPacket } from './packet.js';

export const MASKED = '[masked]';

const QUOTED_VALUES: readonly RegExp[] = [/(Duplicate entry ')(.*)(' for key)/s, /(value: ')(.*?)('(?: for column|$))/gs, /(Incorrect \w+ value: ')(.*?)(')/gs];

export function maskMessageText(text: string, masker: Masker): string {
  let out = masker.maskText(text);
  for (const re of QUOTED_VALUES) out = out.replace(re, (_m, a: string, _v: string, b: string) => `${a}${MASKED}${b}`);
  return out;
}

/** An ERR packet as a masked caller may see it, with its fields for the audit. */
export function maskErr(payload: Buffer, masker: Masker | null): { payload: Buffer; err: ErrPacket } {
  const e = readErr(payload);
  if (!masker?.active) return { payload, err: e };
  const message = maskMessageText(e.message, masker);
  if (message === e.message) return { payload, err: e };
  return { payload: errPayload(e.code, e.sqlstate, message), err: { ...e, message } };
}
