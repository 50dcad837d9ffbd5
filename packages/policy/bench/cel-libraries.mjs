// Compares the CEL libraries considered for `when:` conditions (docs/decisions/0300).
// Not a test. The alternatives are not project dependencies; install them in a scratch
// directory and point CEL_ALT_DIR at it:
//   mkdir /tmp/celbench && cd /tmp/celbench && npm init -y && npm i @bufbuild/cel@0.6.1 @bufbuild/protobuf@2 cel-js@0.8.2
//   CEL_ALT_DIR=/tmp/celbench node packages/policy/bench/cel-libraries.mjs
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import path from 'node:path';

const altDir = process.env.CEL_ALT_DIR;
const N = Number(process.env.N ?? 1_000_000);
const load = async (name, fromAlt) => {
  try {
    if (!fromAlt) return await import(name);
    const req = createRequire(path.join(altDir, 'package.json'));
    const p = req.resolve(name);
    return await import(pathToFileURL(p.replace(/\/cjs\//, '/esm/')).href);
  } catch (e) {
    return null;
  }
};

const ctx = {
  identity: { subject: 'svc:billing', issuer: 'https://idp', groups: ['payments', 'readers', 'contractors-not'], claims: { email: 'a@example.com' } },
  connector: { name: 'api', type: 'http' },
  request: { method: 'POST', path: '/v1/refunds', query: { q: 'x' }, headers: { 'x-tenant': 't1' }, json: { amount: 1500.5, items: [1, 2, 3] } },
  statement: { kind: 'select', kinds: ['select'], tables: ['public.a', 'public.b'], where: 'n/a', text: 'select 1' },
};
const intCtx = { ...ctx, request: { ...ctx.request, json: { amount: 1500, items: [1, 2, 3] } } };

// [expression, expected] — the spec features our rules need.
const cases = [
  ['identity.groups.exists(g, g == "contractors")', false],
  ['statement.tables.all(t, t.startsWith("public."))', true],
  ['has(request.json.amount)', true],
  ['has(request.json.nope)', false],
  ['"payments" in identity.groups', true],
  ['"x-tenant" in request.headers', true],
  ['request.headers["x-tenant"] == "t1"', true],
  ['request.path.startsWith("/v1/") && request.path.endsWith("refunds") && request.path.contains("ref")', true],
  ['request.path.matches("^/v1/[a-z]+$")', true],
  ['size(identity.groups) == 3', true],
  ['request.json.amount > 1000', true],
  ['request.json.items.exists_one(i, i == 2)', true],
  ['request.json.items.filter(i, i > 1).size() == 2', true],
  ['request.json.items.map(i, i * 2.0)[2] == 6.0', true],
  ['identity.claims.email.endsWith("@example.com") ? true : false', true],
  ['request.method in ["POST", "PUT"]', true],
  ['request.json.missing > 1', 'error'],
];
const INT_CASE = ['request.json.amount > 1000', true]; // JSON integer arrives as a JS number

const libs = [];
const marc = await load('@marcbachmann/cel-js', false);
if (marc) {
  const env = new marc.Environment({ unlistedVariablesAreDyn: true });
  libs.push({
    name: '@marcbachmann/cel-js 8.0.0',
    compile: (src) => {
      const p = env.parse(src);
      return (c) => p(c);
    },
  });
}
const buf = altDir && (await load('@bufbuild/cel', true));
if (buf) {
  const env = buf.celEnv();
  libs.push({
    name: '@bufbuild/cel 0.6.1',
    compile: (src) => {
      const f = buf.plan(env, buf.parse(src));
      return (c) => {
        const r = f(c);
        if (buf.isCelError(r)) throw new Error(String(r.message ?? r));
        return r;
      };
    },
  });
}
const cjs = altDir && (await load('cel-js', true));
if (cjs) {
  libs.push({
    name: 'cel-js 0.8.2',
    compile: (src) => {
      const r = cjs.parse(src);
      if (!r.isSuccess) throw new Error('parse: ' + r.errors?.join?.(';'));
      return (c) => cjs.evaluate(r.cst, c);
    },
  });
}

const norm = (v) => (v && typeof v === 'object' && 'value' in v ? v.value : v);
for (const lib of libs) {
  let pass = 0;
  const fails = [];
  for (const [src, want, c = ctx] of [...cases, [...INT_CASE, intCtx]]) {
    let got;
    try {
      got = norm(lib.compile(src)(c));
    } catch (e) {
      got = 'error';
    }
    if (got === want) pass++;
    else fails.push(`${src} → ${String(got)}`);
  }
  const bench = {};
  for (const [label, src] of [
    ['exists', 'identity.groups.exists(g, g == "contractors")'],
    ['cmp+in', 'request.method == "POST" && request.json.amount > 1000.0 && "payments" in identity.groups'],
  ]) {
    let f;
    try {
      f = lib.compile(src);
    } catch {
      bench[label] = 'n/a';
      continue;
    }
    for (let i = 0; i < 20000; i++) f(ctx);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i++) f(ctx);
    bench[label] = Number(process.hrtime.bigint() - t0) / N;
  }
  console.log(JSON.stringify({ lib: lib.name, spec: `${pass}/${cases.length + 1}`, nsPerEval: bench, fails }));
}
