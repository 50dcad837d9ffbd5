/**
 * Masking of a buffered response body for a masked caller. JSON goes through the JSON-path
 * rules and detectors and must parse whole; NDJSON likewise line by line; everything else
 * through the detectors. Anything that cannot be read with certainty — a JSON body that does
 * not parse, an unreadable charset, compressed bytes no Content-Encoding names — is an error
 * (the caller gets 502), never passed through. The body is re-encoded only when masking
 * changed something, else the upstream bytes go out as they came.
 */
import type { Masker } from '@gatehouse/core';
import { err, ok, type Result } from '@gatehouse/core';
import { codings, decodeBody, encodeBody, supportedEncoding } from './codec.js';
import type { Maybe } from '@gatehouse/connector-kit';
import type { CharSpace, MediaType } from './media-type.js';
import { BINARY_IN_TEXT, hiddenFormat } from './sniff.js';

export interface Masked {
  body: Buffer;
  changed: boolean;
}

// Strict UTF-8: a byte a lenient client would skip must not split a value the detectors then miss.
const UTF8_JSON = new TextDecoder('utf-8', { fatal: true }); // drops a leading BOM (JSON parsers must accept one)
const UTF8_TEXT = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }); // keeps it: the text round-trips byte for byte

/**
 * The masked body, or why it cannot be masked. Synchronous for a body without
 * Content-Encoding (the usual case: nothing waits on the thread pool), a promise when a
 * coding must be undone and redone.
 */
export function maskBody(body: Buffer, media: MediaType, encoding: string, masker: Masker, limit: number): Maybe<Result<Masked>> {
  if (body.length === 0) return ok({ body, changed: false });
  if (!supportedEncoding(encoding)) return err('http.mask', `cannot mask a body with content-encoding ${encoding}`);
  if (media.space === null) return err('http.mask', `cannot mask a body in charset ${media.charset ?? ''}`);
  if (codings(encoding).length === 0) {
    const out = maskDecoded(body, media, masker);
    if (!out.ok) return out;
    return ok(out.value === null ? { body, changed: false } : { body: out.value, changed: true });
  }
  return maskEncoded(body, media, encoding, masker, limit);
}

async function maskEncoded(body: Buffer, media: MediaType, encoding: string, masker: Masker, limit: number): Promise<Result<Masked>> {
  let plain: Buffer;
  try {
    plain = await decodeBody(body, encoding, limit);
  } catch {
    return err('http.mask', 'response body could not be decoded within the size limit');
  }
  const out = maskDecoded(plain, media, masker);
  if (!out.ok) return out;
  if (out.value === null) return ok({ body, changed: false });
  return ok({ body: await encodeBody(out.value, encoding), changed: true });
}

/** The decoded body masked: the new bytes, or null when they are the same (the upstream's go out). */
function maskDecoded(plain: Buffer, media: MediaType, masker: Masker): Result<Buffer | null> {
  if (plain.length === 0) return ok(null);
  const hidden = hiddenFormat(plain);
  if (hidden !== null) return err('http.mask', `response body is ${hidden} data that no Content-Encoding names; cannot be masked`);
  const space = media.space as CharSpace; // checked by maskBody
  let text: string;
  try {
    text = space === 'latin1' ? plain.toString('latin1') : (media.kind === 'json' || media.kind === 'ndjson' ? UTF8_JSON : UTF8_TEXT).decode(plain);
  } catch {
    return err('http.mask', 'response body is not valid UTF-8; cannot be masked');
  }
  let out: Result<string | null>;
  switch (media.kind) {
    case 'json':
      out = maskJsonDocument(text, masker);
      break;
    case 'ndjson':
      out = maskJsonLines(text, masker);
      break;
    case 'text':
    case 'sse':
      if (BINARY_IN_TEXT.test(text)) return err('http.mask', 'response declared as text holds binary data (compressed?); cannot be masked');
      out = maskText(text, masker);
      break;
    default:
      out = maskText(text, masker);
  }
  if (!out.ok) return out;
  return ok(out.value === null ? null : Buffer.from(out.value, space));
}

function maskText(text: string, masker: Masker): Result<string | null> {
  const m = masker.maskText(text);
  return ok(m === text ? null : m);
}

/**
 * One JSON document → its masked serialisation, or null when the upstream's bytes may go out
 * as they are. Blank is nothing to mask; anything JSON.parse refuses (trailing bytes, a
 * truncated or compressed body) is an error: detectors alone would miss the JSON-path rules.
 */
export function maskJsonDocument(text: string, masker: Masker): Result<string | null> {
  if (text.trim() === '') return ok(null);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return err('http.mask', 'response declared as JSON does not parse as one JSON document; cannot be masked');
  }
  const m = masker.maskJson(parsed);
  // Duplicate keys: JSON.parse keeps the last, other parsers the first, which masking never
  // saw. Re-serialised from the parsed value, only the masked one remains.
  if (m.changed || memberCount(parsed) !== textMemberCount(text)) return ok(JSON.stringify(m.value));
  return ok(null);
}

/** NDJSON / JSON Lines / JSON text sequences: every non-blank line one document. */
function maskJsonLines(text: string, masker: Masker): Result<string | null> {
  const lines = text.split('\n');
  let changed = false;
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i];
    const cr = line.endsWith('\r') ? '\r' : '';
    if (cr) line = line.slice(0, -1);
    const rs = line.charCodeAt(0) === 0x1e ? '\x1e' : ''; // RFC 7464 record separator
    if (rs) line = line.slice(1);
    const r = maskJsonDocument(line, masker);
    if (!r.ok) return err('http.mask', `line ${i + 1} of a JSON-lines response does not parse as JSON; cannot be masked`);
    if (r.value !== null) {
      lines[i] = rs + r.value + cr;
      changed = true;
    }
  }
  return ok(changed ? lines.join('\n') : null);
}

/** Object members in a parsed value (duplicates already collapsed). */
function memberCount(v: unknown): number {
  let n = 0;
  const stack: unknown[] = [v];
  while (stack.length > 0) {
    const x = stack.pop();
    if (x === null || typeof x !== 'object') continue;
    if (Array.isArray(x)) {
      for (const e of x) if (e !== null && typeof e === 'object') stack.push(e);
      continue;
    }
    for (const k in x) {
      n++;
      const e = (x as Record<string, unknown>)[k];
      if (e !== null && typeof e === 'object') stack.push(e);
    }
  }
  return n;
}

/** Object members in JSON text: every `:` outside a string separates one. */
function textMemberCount(text: string): number {
  let n = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x3a) n++;
  }
  return n;
}
