/**
 * Request-target normalisation. Policy globs compare against the path the upstream will
 * act on, so `/v1//customers/7`, `/v1/./customers/7` and `/v1/%63ustomers/7` must all be
 * seen (and forwarded) as `/v1/customers/7`; anything ambiguous is refused (fail closed).
 *
 * Refused as ambiguous: a `#` anywhere in the target (clients never send a fragment, servers
 * disagree on whether it ends the path), and `;` in a path segment, raw or encoded: servlet
 * containers and Spring strip `;params` before routing (`/v1/customers;x=1/7` and `/a/..;/b`
 * route as `/v1/customers/7` and `/b`) while globs and most other servers see it literally.
 */
import { err, ok, type Result } from '@gatehouse/core';

export interface Target {
  /** Decoded, normalised path used for policy (`/v1/customers/7`). */
  path: string;
  /** Path as forwarded upstream (re-encoded form of `path`). */
  wirePath: string;
  /** Raw query string without `?` (may be empty). */
  query: string;
}

// Quick screen: a path with none of these characters or sequences is already canonical.
const SUSPECT = /%|\/\/|\/\.|\\|;/;

export function parseTarget(url: string | undefined): Result<Target> {
  if (!url || url.charCodeAt(0) !== 47 /* / */) return err('http.target', 'request target must be a path (origin-form)');
  if (url.includes('#')) return err('http.target', 'fragment (#) in request target');
  const q = url.indexOf('?');
  const raw = q === -1 ? url : url.slice(0, q);
  const query = q === -1 ? '' : url.slice(q + 1);
  if (!SUSPECT.test(raw)) return ok({ path: raw, wirePath: raw, query });
  return normalise(raw, query);
}

function normalise(raw: string, query: string): Result<Target> {
  if (raw.includes('\\')) return err('http.target', 'backslash in path');
  const out: string[] = [];
  const parts = raw.split('/');
  for (let i = 1; i < parts.length; i++) {
    let seg: string;
    try {
      seg = decodeURIComponent(parts[i]);
    } catch {
      return err('http.target', 'malformed percent-encoding in path');
    }
    // An encoded slash or NUL would make the policy path differ from what the upstream routes on.
    if (seg.includes('/') || seg.includes('\\') || seg.includes('\0')) return err('http.target', 'encoded separator in path');
    if (seg.includes(';')) return err('http.target', 'matrix parameter (;) in path');
    if (seg === '' && i < parts.length - 1) continue;
    if (seg === '.') continue;
    if (seg === '..') {
      if (out.length === 0) return err('http.target', 'path escapes the root');
      out.pop();
      continue;
    }
    out.push(seg);
  }
  const path = '/' + out.join('/');
  return ok({ path, wirePath: '/' + out.map(encodeSegment).join('/'), query });
}

// RFC 3986 pchar = unreserved / pct-encoded / sub-delims / ":" / "@": keep those literal so
// paths like `/v1/items:batchGet` reach the upstream unchanged.
const PCHAR_SAFE = /[^A-Za-z0-9\-._~!$&'()*+,;=:@]/g;
function encodeSegment(seg: string): string {
  return seg.replace(PCHAR_SAFE, (c) => encodeURIComponent(c));
}
