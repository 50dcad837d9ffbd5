/**
 * mTLS client-certificate identities on the HTTP connector, over real TLS: certificates made
 * by openssl for this run, a gateway with `tls.client_auth`, nginx upstream, undici and curl
 * as callers. A mapped certificate authenticates (issuer `mtls`), a CA-signed but unmapped one
 * gets 401, one from another CA never completes TLS, and a bearer token still wins.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { request } from 'undici';
import { readEvents } from '@gatehouse/audit';
import type { AuditEvent } from '@gatehouse/core';
import { startTestGateway, TOKENS } from '../../lib/gateway.js';
import { LEAF, makeTestPki, mtlsIdentityYaml, SPIFFE_BILLING as SPIFFE } from '../../lib/pki.js';
import { startNginx } from './nginx.js';

const run = promisify(execFile);

t.test('http connector: mTLS client-certificate identities', async (t) => {
  const pki = await makeTestPki(t, [LEAF.server, LEAF.mapped, LEAF.unmapped, LEAF.forged]);
  const nginx = await startNginx(`
    location = /v1/whoami {
      default_type application/json;
      return 200 '{"authorization":"$http_authorization"}';
    }`);
  const tls = `{ cert: ${pki.file('server.crt')}, key: ${pki.file('server.key')}, ca: ${pki.file('ca.crt')}`;
  const tg = await startTestGateway({
    env: { BILLING_API_KEY: 'sk_live_upstream_key_123456' },
    yaml: `
audit: { durability: strict }
${mtlsIdentityYaml('{ cn: stranger-but-not-this-one, subject: "svc:nobody", groups: [payments] }')}connectors:
  - name: mtls-api
    type: http
    listen: 127.0.0.1:0
    tls: ${tls}, client_auth: true }
    upstream: { url: ${nginx.url}, headers: { Authorization: "Bearer \${env:BILLING_API_KEY}" }, timeout: 5s }
    allow: [ { groups: [payments] } ]
  - name: tls-api
    type: http
    listen: 127.0.0.1:0
    tls: { cert: ${pki.file('server.crt')}, key: ${pki.file('server.key')} }
    upstream: { url: ${nginx.url}, timeout: 5s }
    allow: [ { groups: [payments] } ]
`,
  });
  t.teardown(async () => {
    await tg.stop();
    await nginx.stop();
  });
  const url = (connector: string) => `${tg.url(connector, 'https')}/v1/whoami`;
  const call = async (connector: string, client: string | null, headers: Record<string, string> = {}) => {
    const r = await request(url(connector), { dispatcher: pki.agent(client), headers });
    return { status: r.statusCode, headers: r.headers, body: await r.body.text() };
  };
  const curl = (connector: string, client: string) =>
    run('curl', ['-sS', '-w', '\n%{http_code}', '--cacert', pki.file('ca.crt'), '--cert', pki.file(`${client}.crt`), '--key', pki.file(`${client}.key`), url(connector)]);
  const events = (): AuditEvent[] => readEvents(tg.dataDir, { connector: 'mtls-api', limit: 1000 });
  const eventsAfter = async (before: number, count: number): Promise<AuditEvent[]> => {
    for (let i = 0; i < 100 && events().length < before + count; i++) await new Promise((r) => setTimeout(r, 50));
    return events().slice(before);
  };

  await t.test('mapped certificate, no token: 200 from the upstream, audited as the mapped identity', async (t) => {
    const r = await call('mtls-api', 'mapped');
    t.equal(r.status, 200);
    t.same(JSON.parse(r.body), { authorization: 'Bearer sk_live_upstream_key_123456' }, 'upstream credential injected');
    const { stdout } = await curl('mtls-api', 'mapped');
    const lines = stdout.split('\n');
    t.equal(lines.at(-1), '200', 'curl --cert too');
    const ev = events();
    const starts = ev.filter((e) => e.kind === 'session.start');
    t.equal(starts.length, 2, 'one session per connection');
    for (const s of starts) {
      t.same(s.identity, { subject: 'svc:billing-mtls', issuer: 'mtls', groups: ['payments'] });
      t.match(s.meta, { tls: true, certificate: { cn: 'billing-client', uris: [SPIFFE], fingerprint256: /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/ } });
    }
    const units = ev.filter((e) => e.kind === 'unit');
    t.equal(units.length, 2);
    for (const u of units) {
      t.same(u.identity, { subject: 'svc:billing-mtls', issuer: 'mtls', groups: ['payments'] });
      t.equal(u.unit?.text, 'GET /v1/whoami');
      t.equal(u.result?.status, 200);
    }
  });

  await t.test('CA-signed but unmapped certificate: 401 problem, auth.failure audited', async (t) => {
    const r = await call('mtls-api', 'unmapped');
    t.equal(r.status, 401);
    t.equal(r.headers['www-authenticate'], 'Bearer error="invalid_token"');
    t.match(r.headers['content-type'], /application\/problem\+json/);
    t.match(JSON.parse(r.body), { status: 401, detail: 'client certificate is not mapped to an identity' });
    const { stdout } = await curl('mtls-api', 'unmapped');
    t.equal(stdout.split('\n').at(-1), '401');
    const failures = events().filter((e) => e.kind === 'auth.failure');
    t.equal(failures.length, 2);
    for (const f of failures) {
      t.equal(f.identity, null);
      t.match(f.meta, { code: 'auth.certificate', certificate: { cn: 'stranger', uris: ['spiffe://example.org/ns/other/sa/stranger'] } });
    }
  });

  await t.test('certificate from another CA, or none: TLS refuses the connection before any HTTP', async (t) => {
    const before = events().length;
    for (const client of ['forged', null]) {
      const e = await call('mtls-api', client).then(
        () => null,
        (err: Error & { code?: string }) => err,
      );
      t.ok(e, `undici gets no response (${client ?? 'no certificate'})`);
      t.equal(e?.code, 'UND_ERR_SOCKET', e?.message ?? '');
    }
    // TLS 1.3: the client's side of the handshake completes, then node verifies the certificate,
    // refuses it and closes the connection: curl sees no HTTP response at all.
    const curled = await curl('mtls-api', 'forged').then(
      () => null,
      (err: { code?: number; stdout?: string }) => err,
    );
    t.ok(curled, 'curl fails');
    t.equal(curled?.stdout?.split('\n').at(-1), '000', 'no HTTP status ever came back');
    // The refusal is audited after node closed the socket: wait (bounded) for all three.
    const refusals = await eventsAfter(before, 3);
    t.same(
      refusals.map((e) => e.kind),
      ['protocol.error', 'protocol.error', 'protocol.error'],
      'only refusals audited: no session, no unit',
    );
    t.same(refusals.map((e) => (e.meta as { code: string }).code).sort(), [
      'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE',
      'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    ]);
  });

  await t.test('bearer token wins over the certificate; a bad token never falls back to it', async (t) => {
    const r = await call('mtls-api', 'mapped', { authorization: `Bearer ${TOKENS.billing}` });
    t.equal(r.status, 200);
    const last = events()
      .filter((e) => e.kind === 'unit')
      .at(-1);
    t.same(last?.identity, { subject: 'svc:billing', issuer: 'static', groups: ['payments'] }, 'audited as the token identity');
    const bad = await call('mtls-api', 'mapped', { authorization: 'Bearer not-a-configured-token-0123' });
    t.equal(bad.status, 401, 'unknown token: 401 although the certificate is mapped');
    const malformed = await call('mtls-api', 'mapped', { authorization: 'Basic YTpi' });
    t.equal(malformed.status, 401, 'a non-bearer Authorization header: 401, no fallback');
  });

  await t.test('TLS connector without client_auth: no certificate asked, no token → 401', async (t) => {
    const r = await call('tls-api', 'mapped');
    t.equal(r.status, 401, 'a certificate is not requested, so it authenticates nobody');
    t.match(JSON.parse(r.body), { detail: 'an Authorization: Bearer token is required' });
    const plain = await call('tls-api', null);
    t.equal(plain.status, 401);
    const ok = await call('tls-api', null, { authorization: `Bearer ${TOKENS.billing}` });
    t.equal(ok.status, 200);
  });
});
