import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, parseConfig, parseDuration } from '../src/index.js';

const MINIMAL = `
data_dir: ./var
connectors:
  - name: payments-db
    type: postgres
    listen: 127.0.0.1:15432
    upstream: { address: 127.0.0.1:5432, database: payments, user: app, password: "\${env:PG_PASSWORD}" }
    allow: [ { groups: [payments] } ]
    rules:
      - { name: no-ddl, match: { statement: [drop, truncate] }, action: deny }
    review: { reviewers: { groups: [dba] }, timeout: 5m }
`;

t.test('a valid file loads with defaults filled and secrets resolved', async (t) => {
  const r = parseConfig(MINIMAL, 'g.yaml', { env: { PG_PASSWORD: 's3cret' } });
  if (!r.ok) throw r.error;
  const c = r.value;
  t.equal(c.audit.durability, 'strict');
  t.equal(c.audit.window_ms, 5);
  t.equal(c.admin.listen, '127.0.0.1:8080');
  const pg = c.connectors[0]!;
  t.equal(pg.type, 'postgres');
  if (pg.type !== 'postgres') return;
  t.equal(pg.upstream.password, 's3cret');
  t.equal(pg.upstream.sslmode, 'prefer');
  t.equal(pg.review?.timeout, 300_000, 'durations become milliseconds');
  t.equal(pg.startup_timeout, 10_000);
  t.same(pg.masking, []);
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
  t.match(r.error.message, /connectors\[0\]\.review\.timeout: must be a duration/);
});

t.test('duplicate connector names and listen addresses are refused', async (t) => {
  const twice = MINIMAL + MINIMAL.split('connectors:\n')[1]!;
  const r = parseConfig(twice, 'g.yaml', { env: { PG_PASSWORD: 'x' } });
  t.notOk(r.ok);
  if (!r.ok) t.match(r.error.message, /duplicate connector name "payments-db"/);
  const r2 = parseConfig(twice.replace(/name: payments-db/g, (m, off) => (off > 100 ? 'name: other' : m)), 'g.yaml', { env: { PG_PASSWORD: 'x' } });
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
  const r = loadConfig(join(dir, 'g.yaml'), {});
  if (!r.ok) throw r.error;
  const pg = r.value.connectors[0]!;
  t.equal(pg.type === 'postgres' && pg.upstream.password, 'from-file', 'trailing newline trimmed');
  t.equal(r.value.data_dir, join(dir, 'var'), 'data_dir is resolved against the config folder');
  writeFileSync(join(dir, 'g.yaml'), MINIMAL.replace('${env:PG_PASSWORD}', '${file:missing}'));
  const bad = loadConfig(join(dir, 'g.yaml'), {});
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

t.test('the example config of the repository is valid', async (t) => {
  const r = loadConfig(new URL('../../../../gatehouse.example.yaml', import.meta.url).pathname, { GATEHOUSE_DEV_TOKEN: 'x'.repeat(20) });
  if (!r.ok) throw r.error;
  t.ok(r.value.connectors.length >= 1);
});

t.test('offline tools may load a config without its secrets', async (t) => {
  const r = parseConfig(MINIMAL, 'g.yaml', { env: {}, secrets: false });
  if (!r.ok) throw r.error;
  t.equal(r.value.data_dir, './var');
  const pg = r.value.connectors[0]!;
  t.equal(pg.type === 'postgres' && pg.upstream.password, '${env:PG_PASSWORD}', 'left unresolved, never guessed');
});
