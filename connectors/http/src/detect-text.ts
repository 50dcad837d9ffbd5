/**
 * Detectors over the short texts around a body: query strings, paths and header values.
 * A value can hide from the detectors behind URL encoding (`%34%31%31%31…`, `4111+1111+…`)
 * that the receiver undoes, so these texts are also judged in decoded form.
 */
import type { Masker } from '@gatehouse/core';

/** Runs of `%XX`; decoded together so multi-byte UTF-8 sequences come out whole. */
const PCT_RUN = /(?:%[0-9A-Fa-f]{2})+/g;

/**
 * Percent-decoding as a receiver would do it, for detection only: `+` becomes a space (query
 * and form syntax), runs that are not valid UTF-8 decode byte by byte (latin1) so that ASCII
 * digits inside them are still seen, and a malformed `%` stays as it is.
 */
export function decodeForDetectors(s: string): string {
  const plus = s.includes('+') ? s.replace(/\+/g, ' ') : s;
  if (!plus.includes('%')) return plus;
  return plus.replace(PCT_RUN, (run) => {
    try {
      return decodeURIComponent(run);
    } catch {
      return Buffer.from(run.replace(/%/g, ''), 'hex').toString('latin1');
    }
  });
}

/**
 * The detectors' view of a URL-ish text (query, path, header value): masked as written, or
 * — when its decoded form holds a finding the written form hides — the masked decoded form.
 * Returns `s` itself when nothing was found.
 */
export function maskUrlText(masker: Masker, s: string): string {
  const direct = masker.maskText(s);
  if (!s.includes('%') && !s.includes('+')) return direct;
  const decoded = decodeForDetectors(s);
  if (decoded === s) return direct;
  const masked = masker.maskText(decoded);
  return masked === decoded ? direct : masked;
}

/** Characters a header value may not carry (node refuses them, CR/LF would split the head). */
const NOT_HEADER_SAFE = /[^\t\x20-\x7e\x80-\xff]/gu;

/** A response header value as a masked caller may see it: detectors run, result still a valid value. */
export function maskHeaderValue(masker: Masker, value: string): string {
  const m = maskUrlText(masker, value);
  if (m === value) return value;
  // A decoded form may hold CR/LF or non-latin1 characters: put them back in percent form.
  return m.replace(NOT_HEADER_SAFE, (c) => {
    try {
      return encodeURIComponent(c);
    } catch {
      return '%EF%BF%BD'; // lone surrogate
    }
  });
}

/**
 * Masks a flat `[name, value, …]` response header list in place for a masked caller.
 * Content-Length is left alone: it frames the body (and is recomputed when the body is).
 */
export function maskResponseHeaders(headers: string[], masker: Masker): void {
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i].length === 14 && headers[i].toLowerCase() === 'content-length') continue;
    headers[i + 1] = maskHeaderValue(masker, headers[i + 1]);
  }
}
