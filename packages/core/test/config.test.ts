import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  address,
  duration,
  loadConfig,
  parseConfig as parseWith,
  parseDuration,
  resolveWorkers,
  type ConnectorConfig,
  type ConnectorModule,
  type ParseOptions,
} from '../src/index.js';

/** A connector module of the kind a protocol package registers (core cannot import a real one). */
interface FakeConfig extends ConnectorConfig {
  type: 'fake';
  upstream: { address: string; password?: string; mode: 'plain' | 'signed' };
  startup_timeout: number;
}
const fake: ConnectorModule<FakeConfig> = {
  type: 'fake',
  schema: {
    required: ['upstream'],
    properties: {
      upstream: {
        type: 'object',
        additionalProperties: false,
        required: ['address'],
        properties: { address, password: { type: 'string' }, mode: { enum: ['plain', 'signed'], default: 'plain' } },
      },
      startup_timeout: duration('10s'),
    },
  },
  check: (c) => (c.upstream.mode === 'signed' && c.upstream.password === undefined ? { path: ['upstream', 'mode'], message: 'signed needs a password' } : null),
  create: () => {
    throw new Error('not started in these tests');
  },
};
const parseConfig = (text: string, source: string, opts: ParseOptions = {}) => parseWith(text, source, { connectors: [fake], ...opts });
const fakeOf = (c: ConnectorConfig) => c as FakeConfig;

const MINIMAL = `
data_dir: ./var
connectors:
  - name: payments-db
    type: fake
    listen: 127.0.0.1:15432
    upstream: { address: 127.0.0.1:5432, password: "\${env:PG_PASSWORD}" }
    allow: [ { groups: [payments] } ]
    rules:
      - { name: no-ddl, match: { statement: [drop, truncate] }, action: deny }
    startup_timeout: 5m
`;

t.test('a valid file loads with defaults filled and secrets resolved', async (t) => {
  const r = parseConfig(MINIMAL, 'g.yaml', { env: { PG_PASSWORD: 's3cret' } });
  if (!r.ok) throw r.error;
  const c = r.value;
  t.equal(c.audit.durability, 'strict');
  t.equal(c.audit.window_ms, 5);
  t.equal(c.admin.listen, '127.0.0.1:8080');
  const conn = fakeOf(c.connectors[0]);
  t.equal(conn.type, 'fake');
  t.equal(conn.upstream.password, 's3cret');
  t.equal(conn.upstream.mode, 'plain', "the module's defaults are filled");
  t.equal(conn.startup_timeout, 300_000, 'durations become milliseconds');
  t.same(conn.masking, []);
});

t.test('a missing secret names the key and the line', async (t) => {
  const r = parseConfig(MINIMAL, 'g.yaml', { env: {} });
  t.notOk(r.ok);
  if (r.ok) return;
  t.equal(r.error.line, 7);
  t.match(r.error.message, /^g\.yaml:7: connectors\[0\]\.upstream\.password: environment variable PG_PASSWORD is not set$/);
  t.notMatch(r.error.message, /s3cret/);
});

t.test('an unknown key is refused with its path and line', async (t) => {
  const r = parseConfig(MINIMAL.replace('    allow:', '    alow: []\n    allow:'), 'g.yaml', { env: { PG_PASSWORD: 'x' } });
  t.notOk(r.ok);
  if (r.ok) return;
  t.match(r.error.message, /g\.yaml:8: connectors\[0\]\.alow: unknown key "alow"/);
});

t.test('a wrong type is refused with its path and line', async (t) => {
  const r = parseConfig(MINIMAL.replace('data_dir: ./var', 'data_dir: ./var\naudit: { window_ms: fast }'), 'g.yaml', { env: { PG_PASSWORD: 'x' } });
  t.notOk(r.ok);
  if (r.ok) return;
  t.match(r.error.message, /g\.yaml:3: audit\.window_ms: must be integer/);
});

t.test('a wrong enum value lists the allowed values', async (t) => {
  const r = parseConfig(MINIMAL.replace('action: deny', 'action: block'), 'g.yaml', { env: { PG_PASSWORD: 'x' } });
  t.notOk(r.ok);
  if (r.ok) return;
  t.match(r.error.message, /connectors\[0\]\.rules\[0\]\.action: must be one of: allow, deny, review/);
  t.equal(r.error.line, 10);
});

t.test('a bad duration is refused', async (t) => {
  const r = parseConfig(MINIMAL.replace('timeout: 5m', 'timeout: soon'), 'g.yaml', { env: { PG_PASSWORD: 'x' } });
  t.notOk(r.ok);
  if (r.ok) return;
  t.match(r.error.message, /g\.yaml:11: connectors\[0\]\.startup_timeout: must be a duration/);
});

t.test('duplicate connector names and listen addresses are refused', async (t) => {
  const twice = MINIMAL + MINIMAL.split('connectors:\n')[1];
  const r = parseConfig(twice, 'g.yaml', { env: { PG_PASSWORD: 'x' } });
  t.notOk(r.ok);
  if (!r.ok) t.match(r.error.message, /duplicate connector name "payments-db"/);
  const r2 = parseConfig(
    twice.replace(/name: payments-db/g, (m, off) => (off > 100 ? 'name: other' : m)),
    'g.yaml',
    { env: { PG_PASSWORD: 'x' } },
  );
  t.notOk(r2.ok);
  if (!r2.ok) t.match(r2.error.message, /127\.0\.0\.1:15432 is already used by connector "payments-db"/);
});

t.test('YAML syntax errors and duplicate keys carry the line', async (t) => {
  const r = parseConfig('data_dir: a\ndata_dir: b\n', 'g.yaml');
  t.notOk(r.ok);
  if (!r.ok) t.match(r.error.message, /^g\.yaml:2: /);
});

t.test('${file:…} reads a secret file relative to the config', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-cfg-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'pw'), 'from-file\n');
  writeFileSync(join(dir, 'g.yaml'), MINIMAL.replace('${env:PG_PASSWORD}', '${file:pw}'));
  const r = loadConfig(join(dir, 'g.yaml'), {}, { connectors: [fake] });
  if (!r.ok) throw r.error;
  t.equal(fakeOf(r.value.connectors[0]).upstream.password, 'from-file', 'trailing newline trimmed');
  t.equal(r.value.data_dir, join(dir, 'var'), 'data_dir is resolved against the config folder');
  writeFileSync(join(dir, 'g.yaml'), MINIMAL.replace('${env:PG_PASSWORD}', '${file:missing}'));
  const bad = loadConfig(join(dir, 'g.yaml'), {}, { connectors: [fake] });
  t.notOk(bad.ok);
  if (!bad.ok) t.match(bad.error.message, /connectors\[0\]\.upstream\.password: cannot read .*missing: ENOENT/);
});

t.test('parseDuration', async (t) => {
  t.equal(parseDuration('250ms'), 250);
  t.equal(parseDuration('30s'), 30_000);
  t.equal(parseDuration('1.5m'), 90_000);
  t.equal(parseDuration('2h'), 7_200_000);
  t.equal(parseDuration(42), 42);
  t.equal(parseDuration('-1s'), null);
  t.equal(parseDuration('5 minutes'), null);
});

t.test('offline tools may load a config without its secrets', async (t) => {
  const r = parseConfig(MINIMAL, 'g.yaml', { env: {}, secrets: false });
  if (!r.ok) throw r.error;
  t.equal(r.value.data_dir, './var');
  t.equal(fakeOf(r.value.connectors[0]).upstream.password, '${env:PG_PASSWORD}', 'left unresolved, never guessed');
});

/** Parse and return the error message (the test fails if the config was accepted). */
function refused(t: TapTest, text: string, opts: ParseOptions = {}): string {
  const r = parseConfig(text, 'g.yaml', { env: { PG_PASSWORD: 'x' }, ...opts });
  t.notOk(r.ok, 'refused');
  return r.ok ? '' : r.error.message;
}
type TapTest = Parameters<Parameters<typeof t.test>[0]>[0];

t.test('a connector type no module serves is refused naming the type, at its line', async (t) => {
  t.match(
    refused(t, MINIMAL.replace('type: fake', 'type: mysql')),
    /^g\.yaml:5: connectors\[0\]\.type: connector type "mysql" is not available in this build \(this build has: fake\)$/,
  );
  t.match(refused(t, MINIMAL, { connectors: [] }), /g\.yaml:5: connectors\[0\]\.type: connector type "fake" is not available in this build \(this build has no connector types\)/);
  t.ok(parseWith('data_dir: x\nconnectors: []\n', 'g.yaml').ok, 'no modules, no connectors: fine');
});

t.test("a module's keys: unknown key, wrong type and its own check carry the line", async (t) => {
  t.match(refused(t, MINIMAL.replace('password:', 'pasword:')), /^g\.yaml:7: connectors\[0\]\.upstream\.pasword: unknown key "pasword"$/);
  t.match(
    refused(t, MINIMAL.replace('startup_timeout: 5m', 'startup_timeout: 5m\n    upstream_pool: 3')),
    /^g\.yaml:12: connectors\[0\]\.upstream_pool: unknown key "upstream_pool"$/,
  );
  t.match(refused(t, MINIMAL.replace('127.0.0.1:5432,', '127.0.0.1:5432, mode: loud,')), /g\.yaml:7: connectors\[0\]\.upstream\.mode: must be one of: plain, signed/);
  t.match(
    refused(t, MINIMAL.replace('password: "${env:PG_PASSWORD}"', 'mode: signed')),
    /^g\.yaml:7: connectors\[0\]\.upstream\.mode: signed needs a password$/,
    "the module's check names the key relative to the connector",
  );
});

t.test('a module cannot redefine the common keys, and one type has one module', async (t) => {
  const bad: ConnectorModule = { ...fake, type: 'bad', schema: { properties: { tls: { type: 'object' } } } };
  t.throws(() => parseWith(MINIMAL, 'g.yaml', { connectors: [bad] }), /redefines the common key "tls"/);
  t.throws(() => parseWith(MINIMAL, 'g.yaml', { connectors: [fake, { ...fake }] }), /two connector modules serve one type/);
});

t.test('review blocks, the approvals key and the reviewer role load with defaults; what they cannot honour is refused', async (t) => {
  const withRule = MINIMAL.replace('action: deny', 'action: review');
  const review = (block: string) => withRule.replace('    startup_timeout: 5m\n', `    review: ${block}\n`);
  const r = parseConfig(review('{ reviewers: { groups: [dba] } }'), 'g.yaml', { env: { PG_PASSWORD: 'x' } });
  if (!r.ok) throw r.error;
  t.same(r.value.connectors[0].review, { reviewers: { groups: ['dba'] }, mode: 'hold', timeout: 300_000, approvals: 1 }, 'defaults: hold, 5m, one approval');
  t.same(r.value.approvals, { store: 'sqlite', max_pending: 10, notify: [] }, 'approvals defaults');
  t.ok(parseConfig(withRule, 'g.yaml', { env: { PG_PASSWORD: 'x' } }).ok, 'a review rule without a review block loads (refused at run time naming the rule)');
  t.match(refused(t, review('{ mode: hold }')), /^g\.yaml:11: connectors\[0\]\.review: missing required key "reviewers"/);
  t.match(refused(t, review('{ reviewers: {} }')), /connectors\[0\]\.review\.reviewers: names nobody/);
  t.match(refused(t, review('{ reviewers: { groups: [dba] }, approvals: 0 }')), /connectors\[0\]\.review\.approvals: must be >= 1/);
  t.match(refused(t, review('{ reviewers: { groups: [dba] }, timeout: 2h }')), /connectors\[0\]\.review\.timeout: must be between 1s and 1h/);
  t.ok(parseConfig(review('{ reviewers: { groups: [dba] }, mode: reject, timeout: 2h }'), 'g.yaml', { env: { PG_PASSWORD: 'x' } }).ok, 'reject mode may wait up to 24h');
  t.match(refused(t, review('{ reviewers: { groups: [dba] }, mode: reject, timeout: 25h }')), /between 1s and 24h/);
  t.match(
    refused(t, MINIMAL.replace('    startup_timeout: 5m\n', '    review: { reviewers: { groups: [dba] } }\n')),
    /^g\.yaml:11: connectors\[0\]\.review: has no effect: no rule of this connector has action: review/,
  );
  t.ok(parseConfig('data_dir: x\nidentity:\n  roles:\n    reviewer: { groups: [dba] }\n', 'g.yaml').ok, 'the reviewer role loads');
  t.match(refused(t, 'data_dir: x\napprovals: { store: postgres }\n'), /^g\.yaml:2: approvals: store: postgres needs postgres_url/);
  t.match(refused(t, 'data_dir: x\napprovals: { postgres_url: "postgres://h/db" }\n'), /approvals\.postgres_url: postgres_url applies only to store: postgres/);
  t.ok(parseConfig('data_dir: x\napprovals: { store: postgres, postgres_url: "postgres://h/db" }\n', 'g.yaml').ok, 'a shared store');
  t.match(refused(t, 'data_dir: x\napprovals: { notify: [ { webhook: "http://h/x" } ] }\n'), /approvals\.notify\[0\]/, 'a webhook needs its secret');
  t.match(refused(t, 'data_dir: x\napprovals: { notify: [ { webhook: "http://h/x", secret: short } ] }\n'), /approvals\.notify\[0\]/, 'a short secret');
  t.match(refused(t, 'data_dir: x\napprovals: { notify: [ { slack: "http://h/x", secret: "0123456789abcdef" } ] }\n'), /approvals\.notify\[0\]/, 'slack takes no secret');
  t.ok(parseConfig('data_dir: x\napprovals: { notify: [ { slack: "https://hooks.slack.test/x" }, { webhook: "http://h/x", secret: "0123456789abcdef" } ] }\n', 'g.yaml').ok);
});

t.test('tls keys that only work together are refused apart (connectors and admin)', async (t) => {
  const withTls = (tls: string) => MINIMAL.replace('    startup_timeout: 5m\n', `    tls: ${tls}\n`);
  t.match(refused(t, withTls('{ cert: a.pem }')), /^g\.yaml:11: connectors\[0\]\.tls: tls needs both cert and key$/);
  t.match(refused(t, withTls('{ key: k.pem }')), /connectors\[0\]\.tls: tls needs both cert and key/);
  t.match(refused(t, withTls('{}')), /connectors\[0\]\.tls: tls needs both cert and key/, 'an empty block is not "tls on"');
  t.match(refused(t, withTls('{ cert: a.pem, key: k.pem, ca: ca.pem }')), /connectors\[0\]\.tls\.ca: ca is the CA of client certificates: it needs client_auth: true/);
  t.match(refused(t, withTls('{ cert: a.pem, key: k.pem, client_auth: true }')), /connectors\[0\]\.tls: client_auth needs cert, key and ca/);
  t.ok(parseConfig(withTls('{ cert: a.pem, key: k.pem, ca: ca.pem, client_auth: true }'), 'g.yaml', { env: { PG_PASSWORD: 'x' } }).ok);
  const admin = (tls: string) => `data_dir: x\nadmin:\n  listen: 127.0.0.1:0\n  tls: ${tls}\n`;
  t.match(refused(t, admin('{ cert: a.pem }')), /^g\.yaml:4: admin\.tls: tls needs both cert and key$/);
  t.match(refused(t, admin('{ cert: a.pem, key: k.pem, client_auth: true }')), /admin\.tls: client_auth needs cert, key and ca/);
  t.match(refused(t, admin('{ cert: a.pem, key: k.pem, ca: ca.pem }')), /admin\.tls\.ca: .*needs client_auth: true/);
  t.match(refused(t, admin('{ cert: a.pem, key: k.pem, verify: true }')), /admin\.tls\.verify: unknown key "verify"/);
  const ok = parseWith(admin('{ cert: a.pem, key: k.pem, ca: ca.pem, client_auth: true }'), 'g.yaml');
  t.same(ok.ok && ok.value.admin.tls, { cert: 'a.pem', key: 'k.pem', ca: 'ca.pem', client_auth: true });
});

t.test('audit keys: window_ms only with batched, origin usable as a key name', async (t) => {
  t.match(refused(t, 'data_dir: x\naudit:\n  durability: strict\n  window_ms: 20\n'), /^g\.yaml:4: audit\.window_ms: window_ms applies only to durability: batched/);
  t.match(refused(t, 'data_dir: x\naudit: { window_ms: 20 }\n'), /audit\.window_ms: window_ms applies only to durability: batched/, 'strict is the default');
  const batched = parseWith('data_dir: x\naudit: { durability: batched, window_ms: 20 }\n', 'g.yaml');
  t.equal(batched.ok && batched.value.audit.window_ms, 20);
  t.match(refused(t, 'data_dir: x\naudit: { origin: "my log" }\n'), /^g\.yaml:2: audit\.origin: must match pattern/);
  t.match(refused(t, 'data_dir: x\naudit: { origin: "a+b" }\n'), /audit\.origin: must match pattern/);
  t.match(refused(t, 'data_dir: x\naudit: { origin: "" }\n'), /audit\.origin: must match pattern/);
  const origin = parseWith('data_dir: x\naudit: { origin: example.org/audit }\n', 'g.yaml');
  t.equal(origin.ok && origin.value.audit.origin, 'example.org/audit');
});

t.test('identity keys that would be ignored are refused', async (t) => {
  const oidc = (extra: string) => `data_dir: x\nidentity:\n  oidc:\n    - { issuer: "https://idp.example", audience: gh${extra} }\n`;
  t.match(
    refused(t, oidc('') + '    - { issuer: "https://idp.example", audience: other }\n'),
    /^g\.yaml:5: identity\.oidc\[1\]\.issuer: issuer https:\/\/idp\.example is configured twice$/,
  );
  t.match(refused(t, oidc(', algorithms: []')), /identity\.oidc\[0\]\.algorithms: must NOT have fewer than 1 items/);
  t.match(refused(t, oidc(', jwks_url: "idp.example/jwks"')), /identity\.oidc\[0\]\.jwks_url: must match pattern/);
  t.match(refused(t, oidc(', groups_claim: ""')), /identity\.oidc\[0\]\.groups_claim: must NOT have fewer than 1 characters/);
  t.match(refused(t, 'data_dir: x\nidentity:\n  oidc:\n    - { issuer: "https://idp.example", audience: [] }\n'), /identity\.oidc\[0\]\.audience/);
  const token = 'tok-0123456789abcdef';
  const dup = refused(t, `data_dir: x\nidentity:\n  static_tokens:\n    - { token: ${token}, subject: a }\n    - { token: ${token}, subject: b }\n`);
  t.match(dup, /^g\.yaml:5: identity\.static_tokens\[1\]\.token: same token as identity\.static_tokens\[0\]$/);
  t.notMatch(dup, /0123456789/, 'the token itself is never echoed');
  t.match(
    refused(t, 'data_dir: x\nidentity:\n  static_tokens:\n    - { token: "dotted.static.token-0123", subject: a }\n'),
    /identity\.static_tokens\[0\]\.token: must match pattern/,
  );
  t.match(refused(t, 'data_dir: x\nidentity:\n  roles:\n    admin: {}\n'), /^g\.yaml:4: identity\.roles\.admin: names nobody: give groups or subjects$/);
  t.match(refused(t, 'data_dir: x\nidentity:\n  roles:\n    auditor: { groups: [] }\n'), /identity\.roles\.auditor\.groups: must NOT have fewer than 1 items/);
  t.match(refused(t, MINIMAL.replace('allow: [ { groups: [payments] } ]', 'allow: [ {} ]')), /^g\.yaml:8: connectors\[0\]\.allow\[0\]: names nobody/);
});

t.test('workers: auto or 1..256, default 1; a review held on the SQLite approvals store is refused with workers', async (t) => {
  const one = parseWith('data_dir: x\n', 'g.yaml');
  t.equal(one.ok && one.value.workers, 1, 'default: one process, as before');
  for (const v of ['auto', '1', '2', '256']) {
    const r = parseWith(`data_dir: x\nworkers: ${v}\n`, 'g.yaml');
    t.equal(r.ok && r.value.workers, v === 'auto' ? 'auto' : Number(v), `workers: ${v} loads`);
  }
  for (const v of ['0', '257', '-1', '1.5', 'many', '"2"', '[2]', 'null']) {
    t.match(refused(t, `data_dir: x\nworkers: ${v}\n`), /^g\.yaml:2: workers: must be auto or an integer from 1 to 256$/, `workers: ${v} is refused`);
  }
  t.equal(resolveWorkers('auto', 6), 6, 'auto: one per core');
  t.equal(resolveWorkers('auto', 1000), 256, 'auto is capped');
  t.equal(resolveWorkers(3, 64), 3);
  t.equal(resolveWorkers(undefined, 64), 1, 'absent (a hand-built config): one');

  const reviewed = (workers: string, approvals = '') =>
    MINIMAL.replace('action: deny', 'action: review').replace('    startup_timeout: 5m\n', '    review: { reviewers: { groups: [dba] } }\n') + `workers: ${workers}\n${approvals}`;
  t.match(refused(t, reviewed('2')), /workers: workers: 2 cannot hold reviewed units with approvals\.store: sqlite \(connector "payments-db"/);
  t.match(refused(t, reviewed('auto')), /workers: workers: auto cannot hold reviewed units/, 'auto is refused too: the file must not depend on the host');
  t.ok(parseConfig(reviewed('1'), 'g.yaml', { env: { PG_PASSWORD: 'x' } }).ok, 'one process holds reviews on SQLite as before');
  t.ok(
    parseConfig(reviewed('4', 'approvals: { store: postgres, postgres_url: "postgres://h/db" }\n'), 'g.yaml', { env: { PG_PASSWORD: 'x' } }).ok,
    'the shared PostgreSQL store serves workers',
  );
  t.ok(parseConfig(MINIMAL + 'workers: 4\n', 'g.yaml', { env: { PG_PASSWORD: 'x' } }).ok, 'no review block: nothing held in a process');
});
