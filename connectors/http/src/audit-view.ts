/**
 * What the audit keeps of a masked caller's request: the path, the query and body samples
 * pass through the detectors first — the query and form bodies in percent-decoded form, so
 * that `?card=%34%31%31%31…` is masked too — since no clear masked value may reach data_dir.
 */
import type { Masker, Unit } from '@gatehouse/core';
import { parseJsonOrNull } from './body.js';
import { maskUrlText } from './detect-text.js';

/**
 * The unit as it goes to the audit (and the recording): path, query, Host and the header
 * values rules matched on (`header.<name>`) masked. The same object when nothing was found.
 */
export function auditUnit(unit: Unit, masker: Masker): Unit {
  if (!masker.active) return unit;
  let match: Unit['match'] | null = null;
  for (const [k, v] of Object.entries(unit.match)) {
    if (typeof v !== 'string' || !(k === 'path' || k === 'query' || k === 'host' || k.startsWith('header.'))) continue;
    const m = k === 'path' ? masker.maskText(v) : maskUrlText(masker, v);
    if (m !== v) (match ??= { ...unit.match })[k] = m;
  }
  if (match === null) return unit;
  const { method, path, query } = match as Record<string, string>;
  return { ...unit, text: query ? `${method} ${path}?${query}` : `${method} ${path}`, match };
}

/** A path for a protocol.error event of a masked caller. */
export function auditPath(path: string, masker: Masker): string {
  return masker.active ? masker.maskText(path) : path;
}

/** Free text of a request body sample, masked for a masked caller (decoded forms included). */
export function maskSampleText(text: string, masker: Masker): string {
  return masker.active ? maskUrlText(masker, text) : text;
}

/** The audit sample of a buffered request body, at most `cap` characters. */
export function bodySample(body: Buffer, json: unknown, masker: Masker, cap: number): string {
  const parsed = json ?? (masker.active ? parseJsonOrNull(body) : null);
  let text: string;
  // The serialised sample goes through the detectors again: JSON masking leaves numbers and
  // object keys alone, and the sample is audit text, not a document anyone parses.
  if (parsed !== null && masker.active) text = masker.maskText(JSON.stringify(masker.maskJson(parsed).value));
  else {
    // Cut before masking: detectors then see at most `cap` bytes, never the whole body.
    text = maskSampleText((body.length > cap ? body.subarray(0, cap) : body).toString('utf8'), masker);
  }
  return text.length > cap ? text.slice(0, cap) : text;
}
