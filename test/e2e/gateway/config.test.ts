/**
 * The configuration as this build loads it: the connector modules the gateway registers
 * (postgres, http) validate their own keys with `file:line: path: message`; types with no
 * module and keys this build would ignore are refused at load.
 */
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, parseConfig, type ParseOptions } from '@gatehouse/core';
import type { HttpConnectorConfig } from '@gatehouse/connector-http';
import type { PostgresConnectorConfig } from '@gatehouse/connector-postgres';
import { connectorModules, startGateway } from '@gatehouse/gateway';
import type { TapTest } from '../../lib/tap.js';

const parse = (text: string, opts: ParseOptions = {}) => parseConfig(text, 'g.yaml', { env: {}, connectors: connectorModules, ...opts });

function refused(t: TapTest, text: string, pattern: RegExp, why?: string) {
  const r = parse(text);
  t.notOk(r.ok, why ?? `refused: ${pattern}`);
  if (!r.ok) t.match(r.error.message, pattern, why ?? String(pattern));
}

// Line 4 is the connector's `type`, line 6 its upstream, line 7 the first free line.
const POSTGRES = (extra = '') => `data_dir: ./var
connectors:
  - name: db
    type: postgres
    listen: 127.0.0.1:0
    upstream: { address: 127.0.0.1:5432, database: app, user: app }
${extra}`;
const HTTP = (extra = '', upstream = 'url: "http://127.0.0.1:8081/api"') => `data_dir: ./var
connectors:
  - name: api
    type: http
    listen: 127.0.0.1:0
    upstream: { ${upstream} }
${extra}`;

t.test('the example config of the repository is valid for this build', async (t) => {
  const file = fileURLToPath(new URL('../../../../gatehouse.example.yaml', import.meta.url));
  const r = loadConfig(file, { GATEHOUSE_DEV_TOKEN: 'x'.repeat(20), GATEHOUSE_REVIEWER_TOKEN: 'y'.repeat(20) }, { connectors: connectorModules });
  if (!r.ok) throw r.error;
  t.same(
    r.value.connectors.map((c) => c.type),
    ['postgres', 'mysql', 'http'],
  );
});

t.test('postgres connector keys: defaults, unknown key and wrong type with line and path', async (t) => {
  const r = parse(POSTGRES());
  if (!r.ok) throw r.error;
  const pg = r.value.connectors[0] as PostgresConnectorConfig;
  t.match(pg, { upstream: { sslmode: 'prefer', by_group: [] }, startup_timeout: 10_000, masking_mode: 'restricted', on_parse_error: 'deny', max_prepared_statements: 10_000 });
  refused(t, POSTGRES('    pool_size: 4\n'), /^g\.yaml:7: connectors\[0\]\.pool_size: unknown key "pool_size"$/);
  refused(t, POSTGRES().replace('user: app }', 'user: app, sslmod: disable }'), /^g\.yaml:6: connectors\[0\]\.upstream\.sslmod: unknown key "sslmod"$/);
  refused(t, POSTGRES('    max_message_bytes: lots\n'), /^g\.yaml:7: connectors\[0\]\.max_message_bytes: must be integer$/);
  refused(t, POSTGRES('    startup_timeout: soon\n'), /^g\.yaml:7: connectors\[0\]\.startup_timeout: must be a duration/);
  refused(
    t,
    POSTGRES().replace('user: app }', 'user: app, sslmode: always }'),
    /^g\.yaml:6: connectors\[0\]\.upstream\.sslmode: must be one of: disable, prefer, require, verify-full$/,
  );
  refused(t, POSTGRES().replace('    upstream: { address: 127.0.0.1:5432, database: app, user: app }\n', ''), /^g\.yaml:3: connectors\[0\]: missing required key "upstream"$/);
  refused(t, POSTGRES('    unknown_content: refuse\n'), /g\.yaml:7: connectors\[0\]\.unknown_content: unknown key/, 'an http key is not a postgres key');
});

t.test('http connector keys: defaults, unknown key and wrong type with line and path', async (t) => {
  const r = parse(HTTP());
  if (!r.ok) throw r.error;
  const http = r.value.connectors[0] as HttpConnectorConfig;
  t.match(http, { upstream: { timeout: 30_000 }, max_body_bytes: 1_048_576, unknown_content: 'detectors', method_override: 'judge', audit_body_bytes: 4096 });
  refused(t, HTTP('    masking_mode: restricted\n'), /^g\.yaml:7: connectors\[0\]\.masking_mode: unknown key "masking_mode"$/, 'a postgres key is not an http key');
  refused(t, HTTP('', 'url: "http://x", retries: 3'), /^g\.yaml:6: connectors\[0\]\.upstream\.retries: unknown key "retries"$/);
  refused(t, HTTP('    max_body_bytes: big\n'), /^g\.yaml:7: connectors\[0\]\.max_body_bytes: must be integer$/);
  refused(t, HTTP('', 'url: "ftp://x"'), /^g\.yaml:6: connectors\[0\]\.upstream\.url: must match pattern/);
  refused(t, HTTP('    method_override: allow\n'), /^g\.yaml:7: connectors\[0\]\.method_override: must be one of: judge, strip$/);
});

t.test('a type with no module in this build is refused at load naming the type', async (t) => {
  for (const type of ['oracle', 'mssql']) {
    const text = POSTGRES().replace('type: postgres', `type: ${type}`);
    refused(
      t,
      text,
      new RegExp(
        `^g\\.yaml:4: connectors\\[0\\]\\.type: connector type "${type}" is not available in this build \\(this build has: ${connectorModules.map((m) => m.type).join(', ')}\\)$`,
      ),
    );
  }
  refused(t, POSTGRES().replace('type: postgres', 'type: postgresql'), /connector type "postgresql" is not available in this build/, 'a typo too');
});

t.test('review blocks load on every connector type that has a review rule; action: review loads without one', async (t) => {
  const rule = '    rules:\n      - { name: bulk-write, match: { statement: [delete] }, action: review }\n';
  const review = '    review: { reviewers: { groups: [dba] }, mode: hold, timeout: 5m }\n';
  t.ok(parse(POSTGRES(rule + review)).ok, 'postgres: rule + review block');
  t.ok(parse(HTTP('    rules:\n      - { name: big, match: { method: [POST] }, action: review }\n' + review)).ok, 'http: rule + review block');
  refused(t, POSTGRES(review), /^g\.yaml:7: connectors\[0\]\.review: has no effect: no rule of this connector has action: review/);
  t.ok(parse(POSTGRES(rule)).ok, 'a review rule loads without a review block (the Session refuses it naming the rule)');
});

t.test('postgres keys the connector would ignore are refused', async (t) => {
  t.ok(parse(POSTGRES('    tls: { cert: a.pem, key: k.pem, ca: ca.pem, client_auth: true }\n')).ok, 'client certificates (mTLS)');
  refused(
    t,
    POSTGRES('    tls: { cert: a.pem, key: k.pem, ca: ca.pem }\n'),
    /^g\.yaml:7: connectors\[0\]\.tls\.ca: ca is the CA of client certificates: it needs client_auth: true$/,
  );
  refused(
    t,
    POSTGRES().replace('user: app }', 'user: app, ca: ca.pem }'),
    /^g\.yaml:6: connectors\[0\]\.upstream\.ca: ca is used only with sslmode: verify-full \(sslmode is prefer\)$/,
  );
  t.ok(parse(POSTGRES().replace('user: app }', 'user: app, sslmode: verify-full, ca: ca.pem }')).ok, 'ca with verify-full');
  refused(t, POSTGRES('    masking:\n      - { json: ["$.ssn"], with: redact }\n'), /^g\.yaml:8: connectors\[0\]\.masking\[0\]\.json: json paths apply to HTTP bodies/);
  t.ok(parse(POSTGRES('    tls: { cert: a.pem, key: k.pem }\n')).ok, 'cert and key');
});

t.test('http keys the connector would ignore or override are refused', async (t) => {
  refused(t, HTTP('    masking:\n      - { columns: [ssn], with: redact }\n'), /^g\.yaml:8: connectors\[0\]\.masking\[0\]\.columns: columns apply to SQL results/);
  refused(t, HTTP('', 'url: "http://127.0.0.1:1/api?key=1"'), /^g\.yaml:6: connectors\[0\]\.upstream\.url: a query in the URL would be dropped/);
  refused(t, HTTP('', 'url: "http://user:pw@127.0.0.1:1/"'), /connectors\[0\]\.upstream\.url: user info in the URL would be dropped/);
  refused(t, HTTP('', 'url: "http://127.0.0.1:1/#top"'), /connectors\[0\]\.upstream\.url: a fragment in the URL would be dropped/);
  refused(t, HTTP('', 'url: "http://127.0.0.1:1", ca: ca.pem'), /^g\.yaml:6: connectors\[0\]\.upstream\.ca: ca is used only with an https upstream url$/);
  t.ok(parse(HTTP('', 'url: "https://127.0.0.1:1", ca: ca.pem')).ok, 'ca with https');
  refused(t, HTTP('', 'url: "http://x", credential: { type: bearer }'), /connectors\[0\]\.upstream\.credential: type bearer needs "token"/);
  refused(
    t,
    HTTP('', 'url: "http://x", credential: { type: bearer, token: t, username: u }'),
    /connectors\[0\]\.upstream\.credential\.username: not used by credential type bearer/,
  );
  refused(t, HTTP('', 'url: "http://x", credential: { type: header, name: "bad name", value: v }'), /connectors\[0\]\.upstream\.credential\.name: must be an HTTP header name/);
  refused(
    t,
    HTTP('', 'url: "http://x", headers: { Authorization: "Bearer a" }, credential: { type: bearer, token: b }'),
    /connectors\[0\]\.upstream\.headers\.Authorization: replaced by upstream\.credential \(type bearer\)/,
  );
  refused(t, HTTP('', 'url: "http://x", headers: { "bad header": v }'), /connectors\[0\]\.upstream\.headers/);
  refused(t, HTTP('', 'url: "http://x", credential: { type: bearer, token: "a\\nb" }'), /connectors\[0\]\.upstream\.credential\.token: must match pattern/);
  t.ok(parse(HTTP('', 'url: "http://x/api", headers: { X-Tenant: t1 }, credential: { type: basic, username: u, password: p }')).ok);
  refused(t, HTTP('    tls: { cert: a.pem }\n'), /^g\.yaml:7: connectors\[0\]\.tls: tls needs both cert and key$/);
});

t.test('offline tools load a config with connectors without resolving its secrets', async (t) => {
  const text = POSTGRES().replace('user: app }', 'user: app, password: "${env:PG_PASSWORD}" }');
  t.notOk(parse(text).ok, 'a normal load needs the secret');
  const r = parse(text, { secrets: false });
  if (!r.ok) throw r.error;
  t.equal((r.value.connectors[0] as PostgresConnectorConfig).upstream.password, '${env:PG_PASSWORD}');
  // A reference inside a value a connector's check reads (the URL's host) is not judged unresolved.
  const http = HTTP('', 'url: "https://${env:API_HOST}/v1", credential: { type: header, name: "${env:API_HEADER}", value: "${env:API_KEY}" }');
  t.ok(parse(http, { secrets: false }).ok, 'offline: loads');
  const resolved = parse(http, { env: { API_HOST: 'api.example', API_HEADER: 'X-Api-Key', API_KEY: 'k' } });
  t.equal(resolved.ok && (resolved.value.connectors[0] as HttpConnectorConfig).upstream.url, 'https://api.example/v1', 'resolved: checked and loaded');
  const bad = parse(http, { env: { API_HOST: 'api.example', API_HEADER: 'bad header', API_KEY: 'k' } });
  t.match(bad.ok ? '' : bad.error.message, /connectors\[0\]\.upstream\.credential\.name: must be an HTTP header name/, 'resolved values are checked');
});

t.test('the gateway starts connectors with the modules it is given, and only those', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-cfg-mod-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const r = parse(HTTP().replace('data_dir: ./var', `data_dir: ${dir}`));
  if (!r.ok) throw r.error;
  await t.rejects(startGateway(r.value, { logLevel: 'silent', connectors: [] }), /connector "api": type http is not available in this build/);
});
