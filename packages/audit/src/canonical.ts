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
 *
 * Two implementations, one output. `encode` below is the definition. The fast path
 * (`ordered`) gives the same value to native JSON.stringify in an order it will print
 * canonically: subtrees whose keys are already sorted are passed as they are (what
 * JSON.parse of a stored body gives the verifier), others are copied with their keys
 * inserted in sorted order (what an event from a connector needs). Anything whose native
 * printing could differ — keys V8 would re-order (integer-like), `__proto__`, toJSON
 * returning nothing printable, BigInt, excessive depth — abandons the fast path and the
 * whole value goes through `encode`, so errors and edge cases are `encode`'s exactly.
 * test/canonical-fast-path.test.ts checks both paths byte for byte over many shapes.
 * Values are plain data here (structured-cloned into the writer, or JSON.parse'd by the
 * verifier); an accessor property would be read twice on the fast path.
 */

const MAX_DEPTH = 64;

export class CanonicalError extends Error {}

export function canonicalJson(value: unknown): string {
  let fast: string | undefined;
  try {
    fast = JSON.stringify(ordered(value, 0));
  } catch (e) {
    if (e !== SLOW) throw e;
  }
  // `ordered` never yields undefined for a printable value, so undefined means "not printable".
  return fast ?? canonicalJsonSlow(value);
}

/** The reference encoder; exported for the tests that prove the fast path identical. */
export function canonicalJsonSlow(value: unknown): string {
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

/**
 * Thrown inside the fast path to hand the whole value to `encode`. Never escapes. One
 * instance, made once: throwing it costs no stack capture.
 */
const SLOW = new Error('canonical slow path');

/**
 * `v`, or a copy of it, that JSON.stringify prints exactly as `encode` would. Returns `v`
 * itself when nothing needs changing, so an already-canonical tree is not copied.
 */
function ordered(v: unknown, depth: number): unknown {
  if (typeof v !== 'object') {
    if (typeof v === 'bigint') throw SLOW;
    return v; // strings, numbers, booleans, undefined, functions, symbols: JSON.stringify agrees with encode
  }
  if (v === null) return v;
  if (depth >= MAX_DEPTH) throw SLOW;
  if (Array.isArray(v)) {
    // encode ignores toJSON on arrays; JSON.stringify would call it, so copy such an array.
    let out: unknown[] | null = typeof (v as { toJSON?: unknown }).toJSON === 'function' ? v.slice() : null;
    for (let i = 0; i < v.length; i++) {
      const e: unknown = v[i];
      const n = ordered(e, depth + 1);
      if (n !== e) (out ??= v.slice())[i] = n;
    }
    return out ?? v;
  }
  const toJSON = (v as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function') {
    const r = ordered(toJSON.call(v), depth);
    // encode prints a toJSON that yields nothing as null; JSON.stringify would omit it.
    return r === undefined || typeof r === 'function' || typeof r === 'symbol' ? null : r;
  }
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o);
  const proto = Object.getPrototypeOf(o) as unknown;
  // Boxed primitives, Maps, class instances: JSON.stringify reads them differently; copy.
  let inOrder = proto === Object.prototype || proto === null;
  for (let i = 1; inOrder && i < keys.length; i++) inOrder = keys[i - 1] < keys[i];
  if (inOrder) {
    // Already printed in canonical order: keep `o` unless a member has to change.
    for (let i = 0; i < keys.length; i++) {
      const x = o[keys[i]];
      const n = ordered(x, depth + 1);
      if (n !== x) return sortedCopy(o, keys, depth, i, n);
    }
    return o;
  }
  keys.sort();
  return sortedCopy(o, keys, depth, -1, undefined);
}

/** A plain object with `o`'s members inserted in the order of `keys` (sorted), each `ordered`. */
function sortedCopy(o: Record<string, unknown>, keys: string[], depth: number, known: number, knownValue: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i];
    // V8 prints integer-like keys first whatever the insertion order; __proto__ would set the prototype.
    const c = k.charCodeAt(0);
    if ((c >= 48 && c <= 57) || k === '__proto__') throw SLOW;
    out[k] = i === known ? knownValue : i < known ? o[k] : ordered(o[k], depth + 1);
  }
  return out;
}
