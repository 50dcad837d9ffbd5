/**
 * canonicalJson takes a native JSON.stringify fast path; canonicalJsonSlow is the
 * reference encoder. The hash chain depends on them agreeing byte for byte, so every
 * shape here — hand-picked edge cases and seeded random trees — must give identical
 * output (or the identical error) on both paths.
 */
import t from 'tap';
import { canonicalJson, canonicalJsonSlow } from '../src/canonical.js';

function outcome(f: (v: unknown) => string, v: unknown): string {
  try {
    return 'ok ' + f(v);
  } catch (e) {
    return `error ${(e as Error).constructor.name}: ${(e as Error).message}`;
  }
}

function same(t: { equal: (a: unknown, b: unknown, m: string) => unknown }, v: unknown, name: string): void {
  t.equal(outcome(canonicalJson, v), outcome(canonicalJsonSlow, v), name);
}

class Point {
  constructor(
    public y: number,
    public x: number,
  ) {}
}

t.test('hand-picked shapes', async (t) => {
  let deep: unknown = { z: 1 };
  for (let i = 0; i < 63; i++) deep = { a: deep };
  let tooDeep: unknown = deep;
  tooDeep = { b: [tooDeep] };
  const nullProto = Object.assign(Object.create(null) as object, { b: 1, a: 2 });
  const arrWithToJSON = Object.assign([1, { b: 1, a: 2 }], { toJSON: () => 'x' });
  // eslint-disable-next-line no-sparse-arrays -- the hole is what this case tests
  const sparse = [1, , 3];
  const protoKey = JSON.parse('{"__proto__":{"b":1,"a":2},"a":1}') as unknown;
  const protoKeySorted = JSON.parse('{"__proto__":1,"a":{"b":1,"a":2}}') as unknown;
  const cases: Array<[string, unknown]> = [
    ['null', null],
    ['true', true],
    ['string with escapes', 'tab\there "q" \\ \u0001 \u001f \u007f é \u2028 \u2029'],
    ['lone surrogates', ['\ud800', '\udfff', 'a\ud83dz', '\ud83d\ude00']],
    ['numbers', [0, -0, 1, -1, 1e21, 1e-7, 0.1 + 0.2, 5e-324, 1.7976931348623157e308, 4.5, 100, NaN, Infinity, -Infinity, 2 ** 53 + 2]],
    ['sorted plain object', { a: 1, b: [1, 2, { c: 'x', d: null }], c: { d: true } }],
    ['unsorted plain object', { b: 1, a: { d: [3, { z: 1, y: 2 }], c: null } }],
    ['sorted parent, unsorted child late', { a: 1, b: 2, c: { z: 1, y: 2 } }],
    ['sorted parent, unsorted child first', { a: { z: 1, y: 2 }, b: 2, c: 3 }],
    ['RFC 8785 key order', { '\u20ac': 1, '\r': 2, '\ufb33': 3, '1': 4, '\ud83d\ude00': 5, '\u0080': 6, '\u00f6': 7 }],
    ['integer-like keys', { '10': 1, '9': 2, a: 3 }],
    ['integer-like keys in an unsorted child', { a: { b: 1, '2': 2, '10': 3 } }],
    ['digit-led non-integer keys', { '1a': 1, '01': 2, '-1': 3, '1.5': 4 }],
    ['empty key', { '': 1, b: 2, a: 3 }],
    ['__proto__ own key, unsorted value', protoKey],
    ['__proto__ own key, sorted', protoKeySorted],
    ['undefined members', { b: undefined, a: 1, c: [undefined, 2], d: { y: undefined, x: undefined } }],
    ['functions and symbols', { b: () => 1, a: Symbol('s'), c: [() => 1, Symbol('t')] }],
    ['nested arrays', [[[]], [[1, [2, [3, { b: 1, a: [] }]]]], []]],
    ['sparse array', sparse],
    ['Date', { b: new Date(0), a: [new Date(86_400_000)] }],
    ['invalid Date', { d: new Date(NaN) }],
    ['toJSON returning an unsorted object', { v: { toJSON: () => ({ b: 1, a: 2 }) } }],
    ['toJSON returning undefined', { v: { toJSON: () => undefined }, w: [{ toJSON: () => undefined }] }],
    ['toJSON returning a function', { v: { toJSON: () => () => 1 } }],
    ['top-level toJSON returning undefined', { toJSON: () => undefined }],
    ['non-callable toJSON', { toJSON: 5, a: 1 }],
    ['array with toJSON', arrWithToJSON],
    ['Buffer (toJSON)', { b: Buffer.from('hi') }],
    ['Uint8Array', { u: new Uint8Array([1, 2, 3]) }],
    ['boxed primitives', { n: new Number(5), s: new String('ab'), b: new Boolean(false) }],
    ['Map and Set', { m: new Map([['a', 1]]), s: new Set([1]) }],
    ['class instance', { p: new Point(1, 2) }],
    ['null prototype', { o: nullProto }],
    ['bigint member', { b: 1n, a: 1 }],
    ['bigint in array', [1, 2n]],
    ['top-level bigint', 3n],
    ['top-level undefined', undefined],
    ['top-level function', () => 1],
    ['64 levels deep', deep],
    ['65 levels deep', tooDeep],
    ['bigint and too deep together', { a: tooDeep, b: 1n }],
    [
      'an event as a connector builds it',
      {
        time: '2025-01-01T00:00:00.004Z',
        kind: 'unit',
        connector: 'payments-db',
        protocol: 'postgres',
        session: 's',
        identity: { subject: 'svc:billing', issuer: 'https://idp.example.com/', groups: ['payments'] },
        unit: { type: 'statement', text: 'SELECT 1 WHERE x = $1', params: ['***'] },
        decision: { action: 'allow' },
        result: { status: 'SELECT 5', rows: 5, durationMs: 0.42 },
        seq: 4,
        prev: '0'.repeat(64),
      },
    ],
  ];
  for (const [name, v] of cases) same(t, v, name);
  t.equal(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: null } }), '{"a":{"c":null,"d":[3,{"y":2,"z":1}]},"b":1}', 'fast path output is canonical');
  t.equal(canonicalJson(protoKey), '{"__proto__":{"a":2,"b":1},"a":1}', '__proto__ stays a member');
});

t.test('the fast path leaves its input untouched', async (t) => {
  const v = { b: { d: 1, c: 2 }, a: [{ z: 1, y: 2 }] };
  const before = JSON.stringify(v);
  canonicalJson(v);
  t.equal(JSON.stringify(v), before);
});

/** Deterministic PRNG (mulberry32): the same trees on every run, so a failure reproduces. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const ALPHABET = ['a', 'b', 'z', 'A', '_', '0', '9', '-', ' ', '"', '\\', '\n', '\u0000', '\u001f', 'é', 'ö', '\u20ac', '\ufb33', '\ud83d\ude00', '\ud800', '\udc00', '\u2028'];
const NUMBERS = [0, -0, 1, -1, 0.5, 1e21, 1e-7, 123456789.123, -1e-300, NaN, Infinity, 2 ** 31, 2 ** 32 - 1, 0.1 + 0.2];

function randomString(r: () => number, max: number): string {
  let s = '';
  const n = Math.floor(r() * max);
  for (let i = 0; i < n; i++) s += ALPHABET[Math.floor(r() * ALPHABET.length)];
  return s;
}

function randomValue(r: () => number, depth: number): unknown {
  const k = Math.floor(r() * (depth > 6 ? 6 : 10));
  switch (k) {
    case 0:
      return randomString(r, 12);
    case 1:
      return NUMBERS[Math.floor(r() * NUMBERS.length)];
    case 2:
      return r() < 0.5;
    case 3:
      return null;
    case 4:
      return undefined;
    case 5:
      return Math.floor(r() * 1e6) / (r() < 0.5 ? 1 : 7);
    case 6:
    case 7: {
      const a: unknown[] = [];
      const n = Math.floor(r() * 5);
      for (let i = 0; i < n; i++) a.push(randomValue(r, depth + 1));
      return a;
    }
    default: {
      const o: Record<string, unknown> = {};
      const n = Math.floor(r() * 7);
      const keys: string[] = [];
      for (let i = 0; i < n; i++) keys.push(r() < 0.1 ? String(Math.floor(r() * 20)) : randomString(r, 6));
      // Half of the objects get their keys in sorted order, as JSON.parse of a stored body has them.
      if (r() < 0.5) keys.sort();
      for (const key of keys) o[key] = randomValue(r, depth + 1);
      if (r() < 0.05) return new Date(Math.floor(r() * 2e12));
      return o;
    }
  }
}

t.test('seeded random trees, as built and after a JSON round trip', async (t) => {
  const r = rng(0x5eed);
  let mismatches = 0;
  let firstMismatch = '';
  for (let i = 0; i < 5000; i++) {
    const v = randomValue(r, 0);
    for (const x of [v, JSON.parse(JSON.stringify(v) ?? 'null') as unknown]) {
      const a = outcome(canonicalJson, x);
      const b = outcome(canonicalJsonSlow, x);
      if (a !== b) {
        mismatches++;
        firstMismatch ||= `${JSON.stringify(x)}\nfast: ${a}\nslow: ${b}`;
      }
    }
  }
  t.equal(mismatches, 0, firstMismatch || 'fast and slow paths agree on 10,000 trees');
});
