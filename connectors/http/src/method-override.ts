/**
 * Method override: many frameworks (Symfony/Laravel, Express `method-override`, Google and
 * Microsoft APIs) let a request carry its "real" method in a header or a `_method` query
 * parameter, so that `POST /v1/customers/7` with `X-HTTP-Method-Override: DELETE` runs as a
 * DELETE. The gateway either judges the request as the method it names as well
 * (`method_override: judge`) or removes every override before the upstream (`strip`).
 */
import { err, ok, type Result } from '@gatehouse/core';

/** Override header names, compared after lower-casing and `_` → `-` (CGI-style servers map both alike). */
export const OVERRIDE_HEADERS: ReadonlySet<string> = new Set(['x-http-method-override', 'x-http-method', 'x-method-override']);
/**
 * Could `name` be one of those? Their lengths (13, 17, 22) and the leading `x`: the per-request
 * scan lower-cases nothing else (`Authorization` is 13 long too).
 */
function maybeOverrideHeader(name: string): boolean {
  const n = name.length;
  return (n === 13 || n === 17 || n === 22) && (name.charCodeAt(0) | 0x20) === 0x78;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Header name as CGI-style servers see it: lower case, `_` and `-` alike. */
export function canonicalHeaderName(lower: string): string {
  return lower.indexOf('_') === -1 ? lower : lower.replace(/_/g, '-');
}

/**
 * The method the request asks to be run as, or null when it names none. Several override
 * sources that disagree are refused: frameworks differ in which one they read.
 */
export function overrideMethod(rawHeaders: readonly string[], query: string): Result<string | null> {
  // Hot path (every request of every caller): no candidate at all costs a length check per header.
  let candidate = query !== '' && MAYBE_PARAM.test(query);
  for (let i = 0; i < rawHeaders.length && !candidate; i += 2) candidate = maybeOverrideHeader(rawHeaders[i]);
  return candidate ? collect(rawHeaders, query) : NO_OVERRIDE;
}

const NO_OVERRIDE: Result<string | null> = Object.freeze(ok(null));

function collect(rawHeaders: readonly string[], query: string): Result<string | null> {
  let found: string | null = null;
  const take = (value: string): string | null => {
    const m = value.trim().toUpperCase();
    if (m === '') return null;
    if (!TOKEN.test(m)) return 'malformed method override';
    if (found !== null && found !== m) return 'conflicting method overrides';
    found = m;
    return null;
  };
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i];
    if (!maybeOverrideHeader(name) || !OVERRIDE_HEADERS.has(canonicalHeaderName(name.toLowerCase()))) continue;
    // One header may carry a list (`DELETE, PUT`): each element counts.
    for (const v of rawHeaders[i + 1].split(',')) {
      const bad = take(v);
      if (bad) return err('http.method-override', bad);
    }
  }
  if (query !== '' && MAYBE_PARAM.test(query)) {
    for (const p of query.split(/[&;]/)) {
      const eq = p.indexOf('=');
      if (!isMethodParam(eq === -1 ? p : p.slice(0, eq))) continue;
      const bad = take(decodeParam(eq === -1 ? '' : p.slice(eq + 1)));
      if (bad) return err('http.method-override', bad);
    }
  }
  return ok(found);
}

/** The query without any `_method` parameter (`method_override: strip`). */
export function stripMethodParam(query: string): string {
  if (query === '' || !MAYBE_PARAM.test(query)) return query;
  return query
    .split('&')
    .filter((p) => {
      // `;` separates parameters for some parsers: a pair hiding one behind `;` goes too.
      for (const q of p.split(';')) {
        const eq = q.indexOf('=');
        if (isMethodParam(eq === -1 ? q : q.slice(0, eq))) return false;
      }
      return true;
    })
    .join('&');
}

// Cheap screen: a parameter name can only spell `method` in clear or through `%` escapes.
const MAYBE_PARAM = /method|%/i;

/**
 * `_method` as frameworks read it: percent-decoded, case-insensitive, and with PHP's name
 * mangling (` `, `.` and `[` become `_`), array forms (`_method[]`) included.
 */
function isMethodParam(rawName: string): boolean {
  const name = decodeParam(rawName).toLowerCase();
  return /^[_ .[]method(\[.*)?$/.test(name);
}

function decodeParam(s: string): string {
  const plus = s.replace(/\+/g, ' ');
  try {
    return decodeURIComponent(plus);
  } catch {
    return plus;
  }
}
