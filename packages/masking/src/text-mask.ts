/**
 * Detector-driven masking of one text: find every hit of every active detector, then
 * replace each with its rule's strategy. Unchanged text is returned as the same object.
 */
import type { Detector, Span } from './detectors.js';
import { REDACTED, type Strategy } from './strategies.js';

export interface ActiveDetector {
  detector: Detector;
  strategy: Strategy;
  /** `with: null`: the whole value becomes null (in a column / JSON leaf). */
  nulls: boolean;
}

interface Hit extends Span {
  d: ActiveDetector;
}

/**
 * `nullAsRedact`: in free text there is no NULL to return, so a `null` rule's hit is
 * redacted in place instead.
 */
export function maskWithDetectors(text: string, active: readonly ActiveDetector[], nullAsRedact: boolean): string | null {
  let hits: Hit[] | null = null;
  for (const d of active) {
    const spans = d.detector.find(text);
    for (const s of spans) (hits ??= []).push({ start: s.start, end: s.end, d });
  }
  if (!hits) return text;
  if (hits.length > 1) hits.sort((a, b) => a.start - b.start || b.end - a.end);
  let out = '';
  let pos = 0;
  for (const h of hits) {
    if (h.start < pos) continue; // overlaps an earlier (longer or earlier) hit already masked
    if (h.d.nulls && !nullAsRedact) return null;
    const masked = h.d.nulls ? REDACTED : (h.d.strategy(text.slice(h.start, h.end)) ?? REDACTED);
    out += text.slice(pos, h.start) + masked;
    pos = h.end;
  }
  return out + text.slice(pos);
}
