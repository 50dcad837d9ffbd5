import t from 'tap';
import type { Identity, RuleConfig, Unit } from '@gatehouse/core';
import { compilePolicy, initSqlParser, sqlUnits } from '../src/index.js';

const pg = { name: 'payments-db', type: 'postgres' };
const http = { name: 'billing-api', type: 'http' };
const alice: Identity = { subject: 'svc:billing', issuer: 'https://idp', groups: ['payments'], claims: { tenant: 't1', level: 3 } };
const contractor: Identity = { subject: 'svc:ext', issuer: 'https://idp', groups: ['contractors', 'payments'], claims: {} };

t.before(() => initSqlParser());

function unit(sql: string): Unit {
  const r = sqlUnits(sql);
  if (!r.ok || r.value.length !== 1) throw new Error(`bad fixture ${sql}`);
  return r.value[0];
}
function engine(rules: RuleConfig[], connectorType = 'postgres') {
  const r = compilePolicy(rules, { connectorType });
  if (!r.ok) throw new Error(r.error.message);
  return r.value;
}
function request(method: string, path: string, extra: Partial<Record<string, unknown>> = {}): Unit {
  const headers = (extra.headers as Record<string, string>) ?? {};
  const match: Unit['match'] = { method, path, host: 'api.local' };
  for (const [k, v] of Object.entries(headers)) match[`header.${k}`] = v;
  return {
    type: 'request',
    text: `${method} ${path}`,
    match,
    context: { method, path, query: {}, headers, json: extra.json ?? null },
  };
}

const designRules: RuleConfig[] = [
  { name: 'no-ddl', match: { statement: ['drop', 'truncate', 'alter'] }, action: 'deny' },
  { name: 'bulk-write', match: { statement: ['delete', 'update'], where: 'absent' }, action: 'review' },
  { name: 'contractors', when: 'identity.groups.exists(g, g == "contractors")', action: 'deny' },
];

t.test('the DESIGN.md example rules', async (t) => {
  const p = engine(designRules);
  t.same(p.decide(unit('SELECT * FROM t'), alice, pg), { action: 'allow' });
  t.same(p.decide(unit('DROP TABLE t'), alice, pg), { action: 'deny', rule: 'no-ddl', reason: 'denied by rule "no-ddl"' });
  t.equal(p.decide(unit('TRUNCATE t'), alice, pg).rule, 'no-ddl');
  t.same(p.decide(unit('DELETE FROM t'), alice, pg), { action: 'review', rule: 'bulk-write', reason: 'rule "bulk-write" requires review' });
  t.same(p.decide(unit('DELETE FROM t WHERE id = 1'), alice, pg), { action: 'allow' });
  t.equal(p.decide(unit('WITH d AS (DELETE FROM t RETURNING 1) SELECT * FROM d'), alice, pg).rule, 'bulk-write', 'CTE delete is caught');
  t.equal(p.decide(unit('EXPLAIN ANALYZE UPDATE t SET a = 1'), alice, pg).rule, 'bulk-write', 'EXPLAIN ANALYZE update is caught');
  t.equal(p.decide(unit('SELECT 1'), contractor, pg).rule, 'contractors');
  t.equal(p.decide(unit('DROP TABLE t'), contractor, pg).rule, 'no-ddl', 'first matching rule decides');
});

t.test('first match wins: an allow exemption before a deny', async (t) => {
  const p = engine([
    { name: 'dba-may-drop', match: { statement: 'drop' }, when: '"dba" in identity.groups', action: 'allow' },
    { name: 'no-drop', match: { statement: 'drop' }, action: 'deny' },
  ]);
  const dba: Identity = { ...alice, groups: ['dba'] };
  t.same(p.decide(unit('DROP TABLE t'), dba, pg), { action: 'allow', rule: 'dba-may-drop' });
  t.equal(p.decide(unit('DROP TABLE t'), alice, pg).action, 'deny');
  // Reversed order: the deny now shadows the exemption.
  const q = engine([
    { name: 'no-drop', match: { statement: 'drop' }, action: 'deny' },
    { name: 'dba-may-drop', match: { statement: 'drop' }, when: '"dba" in identity.groups', action: 'allow' },
  ]);
  t.equal(q.decide(unit('DROP TABLE t'), dba, pg).action, 'deny');
});

t.test('match semantics: any-of, case-insensitive words, arrays, every key', async (t) => {
  const p = engine([{ name: 'secrets', match: { tables: ['Public.Secrets', 'vault.*'], statement: ['SELECT', 'copy'] }, action: 'deny' }]);
  t.equal(p.decide(unit('select * from public.secrets'), alice, pg).action, 'deny');
  t.equal(p.decide(unit('SELECT * FROM a JOIN vault.keys k ON true'), alice, pg).action, 'deny', 'any table element');
  t.equal(p.decide(unit('COPY vault.keys TO STDOUT'), alice, pg).action, 'deny');
  t.equal(p.decide(unit('DELETE FROM vault.keys WHERE true'), alice, pg).action, 'allow', 'statement key does not match');
  t.equal(p.decide(unit('SELECT * FROM public.other'), alice, pg).action, 'allow', 'tables key does not match');
  t.equal(p.decide(unit('SELECT * FROM vaultx.keys'), alice, pg).action, 'allow');
});

t.test('globs on HTTP paths', async (t) => {
  const p = engine(
    [
      { name: 'no-customer-delete', match: { method: ['DELETE'], path: '/v1/customers/*' }, action: 'deny' },
      { name: 'admin-tree', match: { path: '/admin/**' }, action: 'review' },
      { name: 'tenant', match: { 'header.X-Tenant': 'blocked-*' }, action: 'deny' },
    ],
    'http',
  );
  t.equal(p.decide(request('DELETE', '/v1/customers/7'), alice, http).action, 'deny');
  t.equal(p.decide(request('delete', '/v1/customers/7'), alice, http).action, 'deny', 'method case-insensitive');
  t.equal(p.decide(request('DELETE', '/v1/customers/7/notes'), alice, http).action, 'allow', '* stops at /');
  t.equal(p.decide(request('DELETE', '/v1/customers'), alice, http).action, 'allow');
  t.equal(p.decide(request('GET', '/v1/customers/7'), alice, http).action, 'allow');
  t.equal(p.decide(request('GET', '/admin/users/1/keys'), alice, http).action, 'review', '** crosses /');
  t.equal(p.decide(request('GET', '/v1/x', { headers: { 'x-tenant': 'blocked-42' } }), alice, http).rule, 'tenant', 'header keys are lower-cased');
  t.equal(p.decide(request('GET', '/v1/x'), alice, http).action, 'allow', 'missing header never matches');
});

t.test('CEL conditions see identity, connector and the unit context', async (t) => {
  const p = engine(
    [
      { name: 'big-refunds', when: 'request.json.amount > 1000', match: { method: ['POST'], path: '/v1/refunds' }, action: 'review' },
      { name: 'tenant-mismatch', when: '"x-tenant" in request.headers && request.headers["x-tenant"] != identity.claims.tenant', action: 'deny' },
      { name: 'named', when: 'connector.name == "other" && request.path.startsWith("/v1/")', action: 'deny' },
    ],
    'http',
  );
  t.equal(p.decide(request('POST', '/v1/refunds', { json: { amount: 1500 } }), alice, http).action, 'review');
  t.equal(p.decide(request('POST', '/v1/refunds', { json: { amount: 1000.5 } }), alice, http).action, 'review');
  t.equal(p.decide(request('POST', '/v1/refunds', { json: { amount: 20 } }), alice, http).action, 'allow');
  t.equal(p.decide(request('GET', '/v1/x', { headers: { 'x-tenant': 't2' } }), alice, http).rule, 'tenant-mismatch');
  t.equal(p.decide(request('GET', '/v1/x', { headers: { 'x-tenant': 't1' } }), alice, http).action, 'allow');
  t.equal(p.decide(request('GET', '/v1/x'), alice, { name: 'other', type: 'http' }).rule, 'named');

  const s = engine([
    { name: 'only-public', when: '!statement.tables.all(t, t.startsWith("public."))', match: { statement: 'select' }, action: 'deny' },
    { name: 'senior', when: 'identity.claims.level >= 5 && statement.kind == "delete"', action: 'allow' },
    { name: 'deletes', match: { statement: 'delete' }, action: 'deny' },
  ]);
  t.equal(s.decide(unit('SELECT * FROM public.a, public.b'), alice, pg).action, 'allow');
  t.equal(s.decide(unit('SELECT * FROM public.a, private.b'), alice, pg).rule, 'only-public');
  t.equal(s.decide(unit('DELETE FROM x WHERE id = 1'), alice, pg).rule, 'deletes');
  t.equal(s.decide(unit('DELETE FROM x WHERE id = 1'), { ...alice, claims: { level: 7 } }, pg).rule, 'senior');
});

t.test('CEL evaluation errors fail closed', async (t) => {
  const p = engine(
    [
      { name: 'allow-small', when: 'request.json.amount < 10', action: 'allow' },
      { name: 'deny-big', when: 'request.json.amount > 1000', action: 'deny' },
    ],
    'http',
  );
  // No body: `request.json.amount` errors. The allow does not fire; the deny does.
  const d = p.decide(request('POST', '/v1/refunds'), alice, http);
  t.equal(d.action, 'deny');
  t.equal(d.rule, 'deny-big');
  t.match(d.reason, /condition of rule "deny-big" errored/);
  // Wrong type (string amount) also errors rather than comparing.
  t.equal(p.decide(request('POST', '/x', { json: { amount: '5' } }), alice, http).action, 'deny');
  t.equal(p.decide(request('POST', '/x', { json: { amount: 5 } }), alice, http).rule, 'allow-small');

  const review = engine([{ name: 'r', when: 'identity.claims.missing == "x"', action: 'review' }]);
  const rd = review.decide(unit('SELECT 1'), alice, pg);
  t.equal(rd.action, 'review');
  t.match(rd.reason, /errored/);
});

t.test('compile errors name the rule', async (t) => {
  const bad = (rules: RuleConfig[], type = 'postgres') => {
    const r = compilePolicy(rules, { connectorType: type });
    t.equal(r.ok, false);
    return r.ok ? '' : r.error.message;
  };
  t.match(bad([{ name: 'typo', match: { statment: 'drop' }, action: 'deny' }]), /rule "typo": unknown match key "statment" for postgres/);
  t.match(bad([{ name: 'wrong-type', match: { method: 'GET' }, action: 'deny' }]), /unknown match key "method"/);
  t.match(bad([{ name: 'sqlkey', match: { tables: 'x' }, action: 'deny' }], 'http'), /unknown match key "tables" for http/);
  t.match(bad([{ name: 'syntax', when: 'identity.groups.exists(g, ', action: 'deny' }]), /rule "syntax": invalid when condition/);
  t.match(bad([{ name: 'var', when: 'requst.json.a > 1', action: 'deny' }], 'http'), /rule "var": invalid when condition.*requst/);
  t.match(bad([{ name: 'other-unit', when: 'request.method == "GET"', action: 'deny' }]), /rule "other-unit"/);
  t.match(bad([{ name: 'not-bool', when: '1 + 2', action: 'deny' }]), /boolean/);
  t.match(bad([{ name: 'empty', action: 'deny' }]), /rule "empty": needs a match block or a when/);
  t.match(bad([{ name: 'act', match: { statement: 'drop' }, action: 'block' as never }]), /action/);
  t.match(
    bad([
      { name: 'dup', match: { statement: 'drop' }, action: 'deny' },
      { name: 'dup', match: { statement: 'x' }, action: 'deny' },
    ]),
    /duplicate/,
  );
  t.match(bad([{ name: 'v', match: { statement: [] }, action: 'deny' }]), /non-empty/);
  t.match(bad([], 'gopher'), /unknown connector type/);
  t.ok(compilePolicy([], { connectorType: 'ssh' }).ok);
});

t.test('no rules: everything is allowed', async (t) => {
  const p = engine([]);
  t.same(p.decide(unit('DROP TABLE t'), alice, pg), { action: 'allow' });
});

t.test('a where: or statement: value that can never match is refused at load', async (t) => {
  const typo = compilePolicy([{ name: 'bulk', match: { statement: ['delete'], where: 'absnet' }, action: 'review' }], { connectorType: 'postgres' });
  t.notOk(typo.ok);
  if (!typo.ok) t.match(typo.error.message, /rule "bulk": match key "where": "absnet" can never match/);
  const kind = compilePolicy([{ name: 'k', match: { statement: ['dorp'] }, action: 'deny' }], { connectorType: 'postgres' });
  t.notOk(kind.ok, 'an unknown statement kind is refused');
  const globs = compilePolicy([{ name: 'g', match: { statement: ['*'], where: ['abs*', 'trivial'] }, action: 'deny' }], { connectorType: 'postgres' });
  t.ok(globs.ok, 'globs that match a known value are fine');
});
