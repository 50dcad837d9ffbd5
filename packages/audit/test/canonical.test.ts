import t from 'tap';
import { canonicalJson } from '../src/canonical.js';

t.test('keys sort by UTF-16 code units, recursively, without whitespace', async (t) => {
  t.equal(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: null } }), '{"a":{"c":null,"d":[3,{"y":2,"z":1}]},"b":1}');
  // RFC 8785 §3.2.3 ordering example: code-unit order, not code-point or locale order.
  const keys = {
    '\u20ac': 'Euro Sign',
    '\r': 'Carriage Return',
    '\ufb33': 'Hebrew Letter Dalet With Dagesh',
    '1': 'One',
    '\ud83d\ude00': 'Emoji',
    '\u0080': 'Control',
    '\u00f6': 'Latin Small Letter O With Diaeresis',
  };
  const order = Object.keys(JSON.parse(canonicalJson(keys)) as object);
  // JSON.parse re-orders integer-like keys first, so compare the raw text order instead.
  const raw = canonicalJson(keys);
  const positions = ['\\r', '1', '\u0080', '\u00f6', '\u20ac', '\ud83d\ude00', '\ufb33'].map((k) => raw.indexOf(`"${k}"`));
  t.same(
    [...positions].sort((a, b) => a - b),
    positions,
    'RFC 8785 key order',
  );
  t.equal(order.length, 7);
});

t.test('numbers use the ECMAScript shortest form; strings the JSON.stringify escapes', async (t) => {
  t.equal(canonicalJson([1e21, 1e-7, 0.1 + 0.2, -0, 100, 4.5]), '[1e+21,1e-7,0.30000000000000004,0,100,4.5]');
  t.equal(canonicalJson('tab\there "q" \\ \u0001 é'), '"tab\\there \\"q\\" \\\\ \\u0001 é"');
});

t.test('JSON.stringify semantics for undefined and non-finite values, and round-trip', async (t) => {
  const v = { a: undefined, b: [undefined, NaN, Infinity], c: new Date(0), d: 'x' };
  const s = canonicalJson(v);
  t.equal(s, '{"b":[null,null,null],"c":"1970-01-01T00:00:00.000Z","d":"x"}');
  t.equal(canonicalJson(JSON.parse(s)), s, 'canonical(parse(canonical(x))) is stable');
});

t.test('refuses what has no canonical form', async (t) => {
  t.throws(() => canonicalJson({ n: 10n }), /bigint/);
  let deep: unknown = 1;
  for (let i = 0; i < 100; i++) deep = [deep];
  t.throws(() => canonicalJson(deep), /nesting/);
});
