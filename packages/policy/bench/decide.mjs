// Micro-benchmark of the policy hot path (not a test; timings are printed, never asserted).
//   cd /work/main && npx tsc -b packages/policy && node packages/policy/bench/decide.mjs
// Prints ns/op for: cached sqlUnits, decide on match-only rules, decide with a CEL
// condition, and the uncached parse (first sight of a statement) for scale.
import { compilePolicy, initSqlParser, sqlUnits } from '../dist/src/index.js';

const N = Number(process.env.N ?? 1_000_000);
await initSqlParser();

const rules = [
  { name: 'no-ddl', match: { statement: ['drop', 'truncate', 'alter'] }, action: 'deny' },
  { name: 'bulk-write', match: { statement: ['delete', 'update'], where: 'absent' }, action: 'review' },
  { name: 'secrets', match: { tables: ['vault.*', 'public.secrets'] }, action: 'deny' },
];
const withCel = [...rules, { name: 'contractors', when: 'identity.groups.exists(g, g == "contractors")', action: 'deny' }];
const identity = { subject: 'svc:billing', issuer: 'https://idp', groups: ['payments', 'readers'], claims: {} };
const connector = { name: 'payments-db', type: 'postgres' };
const sql = 'SELECT id, amount, card_number FROM public.payments WHERE customer_id = $1 ORDER BY created_at DESC LIMIT 50';

function time(label, n, fn) {
  for (let i = 0; i < Math.min(n, 50_000); i++) fn(i);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn(i);
  const ns = Number(process.hrtime.bigint() - t0) / n;
  return { label, ns: Math.round(ns * 10) / 10 };
}

const plain = compilePolicy(rules, { connectorType: 'postgres' });
const cel = compilePolicy(withCel, { connectorType: 'postgres' });
if (!plain.ok || !cel.ok) throw new Error('compile failed');
const unit = sqlUnits(sql).value[0];
let sink = 0;
const results = [
  time('sqlUnits (cached)', N, () => {
    sink += sqlUnits(sql).ok ? 1 : 0;
  }),
  time('decide (3 match rules, no hit)', N, () => {
    sink += plain.value.decide(unit, identity, connector).action.length;
  }),
  time('decide (+1 CEL exists rule)', N, () => {
    sink += cel.value.decide(unit, identity, connector).action.length;
  }),
  time('sqlUnits + decide (cached, CEL)', N, () => {
    sink += cel.value.decide(sqlUnits(sql).value[0], identity, connector).action.length;
  }),
  time('sqlUnits (uncached: parse+walk)', 20_000, (i) => {
    sink += sqlUnits(`${sql} OFFSET ${i + 1_000_000}`).ok ? 1 : 0;
  }),
];
console.log(JSON.stringify({ node: process.version, n: N, results, sink: sink > 0 }));
for (const r of results) console.log(`${r.label.padEnd(36)} ${String(r.ns).padStart(10)} ns/op`);
