/**
 * Canonical JSON (RFC 8785 / JCS style): the exact bytes an event is hashed over.
 *
 * - object keys sorted by UTF-16 code units (what Array#sort does by default);
 * - no insignificant whitespace;
 * - strings escaped as ECMAScript JSON.stringify does (RFC 8785 §3.2.2.2);
 * - numbers in ECMAScript shortest round-trip form (RFC 8785 §3.2.2.3).
 *
 * Deviations, chosen so an odd value in one event never takes the gateway down:
 * non-finite numbers become `null` and `undefined` members are omitted, exactly as
 * JSON.stringify does; both round-trip (parse → canonicalise gives the same bytes).
 * BigInt, and nesting deeper than MAX_DEPTH, are refused.
 */

const MAX_DEPTH = 64;

export class CanonicalError extends Error {}

export function canonicalJson(value: unknown): string {
  const out = encode(value, 0);
  if (out === undefined) throw new CanonicalError('value is not representable as JSON');
  return out;
}

function encode(v: unknown, depth: number): string | undefined {
  switch (typeof v) {
    case 'string':
      return JSON.stringify(v);
    case 'number':
      return Number.isFinite(v) ? JSON.stringify(v) : 'null';
    case 'boolean':
      return v ? 'true' : 'false';
    case 'object':
      if (v === null) return 'null';
      if (depth >= MAX_DEPTH) throw new CanonicalError(`nesting deeper than ${MAX_DEPTH}`);
      return Array.isArray(v) ? encodeArray(v, depth + 1) : encodeObject(v as Record<string, unknown>, depth + 1);
    case 'bigint':
      throw new CanonicalError('bigint has no canonical JSON form');
    default:
      // undefined, functions, symbols: omitted from objects, null in arrays (as JSON.stringify).
      return undefined;
  }
}

function encodeArray(a: readonly unknown[], depth: number): string {
  let s = '[';
  for (let i = 0; i < a.length; i++) {
    if (i > 0) s += ',';
    s += encode(a[i], depth) ?? 'null';
  }
  return s + ']';
}

function encodeObject(o: Record<string, unknown>, depth: number): string {
  const toJSON = (o as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function') return encode(toJSON.call(o), depth - 1) ?? 'null';
  const keys = Object.keys(o).sort();
  let s = '{';
  let first = true;
  for (const k of keys) {
    const e = encode(o[k], depth);
    if (e === undefined) continue;
    if (!first) s += ',';
    first = false;
    s += JSON.stringify(k) + ':' + e;
  }
  return s + '}';
}
