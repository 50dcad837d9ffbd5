/**
 * Masking of a buffered response body. JSON goes through the JSON-path rules and detectors;
 * other text only through the detectors, and only when `mask_text_bodies` is on. The body
 * is re-encoded only when masking changed something, else the upstream bytes go out as-is.
 */
import type { Masker } from '@gatehouse/core';
import { err, ok, type Result } from '@gatehouse/core';
import { decodeBody, encodeBody, supportedEncoding } from './codec.js';
import { looksLikeJson } from './body.js';

export type MaskKind = 'json' | 'text' | null;

/** Which masking a response with this Content-Type needs (null: stream it untouched). */
export function maskKind(contentType: string, maskTextBodies: boolean): MaskKind {
  if (contentType === '') return maskTextBodies ? 'text' : null;
  const semi = contentType.indexOf(';');
  const mt = (semi === -1 ? contentType : contentType.slice(0, semi)).trim();
  if (mt === 'application/json' || mt.endsWith('+json') || mt === 'application/x-ndjson') return 'json';
  if (!maskTextBodies) return null;
  if (mt.startsWith('text/') || mt.endsWith('+xml') || mt === 'application/xml' || mt === 'application/x-www-form-urlencoded') return 'text';
  return null;
}

export interface Masked {
  body: Buffer;
  changed: boolean;
}

export async function maskBody(body: Buffer, kind: 'json' | 'text', encoding: string, masker: Masker, limit: number): Promise<Result<Masked>> {
  if (!supportedEncoding(encoding)) return err('http.mask', `cannot mask a body with content-encoding ${encoding}`);
  let plain: Buffer;
  try {
    plain = await decodeBody(body, encoding, limit);
  } catch {
    return err('http.mask', 'response body could not be decoded within the size limit');
  }
  const text = plain.toString('utf8');
  let out: string | null = null;
  if (kind === 'json' && looksLikeJson(plain)) {
    let parsed: unknown;
    let parsedOk = true;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsedOk = false;
    }
    if (parsedOk) {
      const m = masker.maskJson(parsed);
      if (m.changed) out = JSON.stringify(m.value);
    } else {
      // Declared JSON but not parseable (e.g. NDJSON): the detectors still see every value.
      const t = masker.maskText(text);
      if (t !== text) out = t;
    }
  } else {
    const t = masker.maskText(text);
    if (t !== text) out = t;
  }
  if (out === null) return ok({ body, changed: false });
  return ok({ body: await encodeBody(Buffer.from(out, 'utf8'), encoding), changed: true });
}
