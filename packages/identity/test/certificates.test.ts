/**
 * mTLS identities: the mapping from a verified client certificate's subject CN / URI SAN to
 * an identity, its refusals, the config keys that declare it, and the SAN text parser.
 */
import t from 'tap';
import { parseConfig, sanURIsOf, type ClientCertificate, type ConnectorModule } from '@gatehouse/core';
import { createAuthenticator, MTLS_ISSUER, type IdentityConfig } from '@gatehouse/identity';

const SPIFFE = 'spiffe://example.org/ns/payments/sa/billing';
const FP = 'AB:CD:EF:01';

const config: IdentityConfig = {
  oidc: [],
  static_tokens: [],
  roles: {},
  certificates: [
    { cn: 'billing-client', subject: 'svc:billing', groups: ['payments'] },
    { uri: SPIFFE, subject: 'svc:billing-spiffe', groups: ['payments', 'spiffe'] },
    { cn: 'reports', subject: 'svc:reports', groups: [] },
    { uri: 'spiffe://example.org/reports', subject: 'svc:reports', groups: [] },
  ],
};

const cert = (c: Partial<ClientCertificate>): ClientCertificate => ({ sanURIs: [], fingerprint256: FP, ...c });

t.test('a certificate maps by exact CN or exact URI SAN; the issuer is mtls', async (t) => {
  const auth = createAuthenticator(config);
  t.teardown(() => auth.close());
  const byCN = await auth.authenticateCertificate(cert({ subjectCN: 'billing-client', notAfter: Date.now() / 1000 + 3600 }));
  t.ok(byCN.ok);
  if (byCN.ok) {
    t.equal(byCN.value.subject, 'svc:billing');
    t.equal(byCN.value.issuer, MTLS_ISSUER);
    t.equal(MTLS_ISSUER, 'mtls');
    t.same(byCN.value.groups, ['payments']);
    t.match(byCN.value.claims, { sub: 'svc:billing', iss: 'mtls', cn: 'billing-client', fingerprint256: FP, uris: [] });
    t.type(byCN.value.claims.exp, 'number', 'notAfter becomes exp, so a long session is re-checked');
  }
  const byURI = await auth.authenticateCertificate(cert({ subjectCN: 'whatever', sanURIs: ['https://x.example/', SPIFFE] }));
  t.ok(byURI.ok);
  if (byURI.ok) t.same([byURI.value.subject, byURI.value.groups], ['svc:billing-spiffe', ['payments', 'spiffe']]);
  const both = await auth.authenticateCertificate(cert({ subjectCN: 'reports', sanURIs: ['spiffe://example.org/reports'] }));
  t.ok(both.ok, 'CN and URI mapping the same identity agree');
});

t.test('unmapped, ambiguous, expired and near-miss certificates are refused', async (t) => {
  const auth = createAuthenticator(config);
  t.teardown(() => auth.close());
  const code = async (c: ClientCertificate) => {
    const r = await auth.authenticateCertificate(c);
    return r.ok ? `ok:${r.value.subject}` : r.error.code;
  };
  t.equal(await code(cert({ subjectCN: 'stranger' })), 'auth.certificate', 'CA-signed but unmapped');
  t.equal(await code(cert({})), 'auth.certificate', 'no CN and no URI');
  t.equal(await code(cert({ subjectCN: 'Billing-Client' })), 'auth.certificate', 'CN compared exactly (case)');
  t.equal(await code(cert({ subjectCN: 'billing-client ' })), 'auth.certificate', 'CN compared exactly (space)');
  t.equal(await code(cert({ sanURIs: [`${SPIFFE}/x`] })), 'auth.certificate', 'URI compared exactly, no prefix match');
  t.equal(await code(cert({ subjectCN: SPIFFE })), 'auth.certificate', 'a CN holding a URI does not match a uri mapping');
  t.equal(await code(cert({ sanURIs: ['billing-client'] })), 'auth.certificate', 'a URI SAN does not match a cn mapping');
  t.equal(await code(cert({ subjectCN: 'billing-client', sanURIs: [SPIFFE] })), 'auth.certificate', 'two different identities: ambiguous');
  t.equal(await code(cert({ subjectCN: 'billing-client', notAfter: Date.now() / 1000 - 1 })), 'auth.expired');
  const none = createAuthenticator({ oidc: [], static_tokens: [], roles: {} });
  const r = await none.authenticateCertificate(cert({ subjectCN: 'billing-client' }));
  t.equal(r.ok ? 'ok' : r.error.code, 'auth.certificate', 'no certificates configured: nobody');
  none.close();
  auth.close();
  const closed = await auth.authenticateCertificate(cert({ subjectCN: 'billing-client' }));
  t.equal(closed.ok ? 'ok' : closed.error.code, 'auth.invalid', 'a closed authenticator refuses');
});

t.test('config: identity.certificates keys, one of cn / uri, no duplicates', async (t) => {
  const parse = (entries: string) => parseConfig(`data_dir: /tmp/x\nidentity:\n  certificates:\n${entries}`, 'c.yaml', { env: {} });
  const good = parse(`    - { cn: billing-client, subject: "svc:billing", groups: [payments] }\n    - { uri: "${SPIFFE}", subject: "svc:b" }\n`);
  t.ok(good.ok, good.ok ? '' : good.error.message);
  if (good.ok)
    t.same(good.value.identity.certificates, [
      { cn: 'billing-client', subject: 'svc:billing', groups: ['payments'] },
      { uri: SPIFFE, subject: 'svc:b', groups: [] },
    ]);
  const bare = parseConfig('data_dir: /tmp/x\n', 'c.yaml', { env: {} });
  t.same(bare.ok && bare.value.identity.certificates, [], 'defaults to an empty list');
  const bad = (entries: string, pattern: RegExp, why: string) => {
    const r = parse(entries);
    t.notOk(r.ok, why);
    if (!r.ok) t.match(r.error.message, pattern, why);
  };
  bad(`    - { cn: a, uri: "spiffe://x/y", subject: s }\n`, /identity\.certificates\[0\]/, 'both cn and uri');
  bad(`    - { subject: s }\n`, /identity\.certificates\[0\]/, 'neither cn nor uri');
  bad(`    - { cn: a }\n`, /missing required key "subject"/, 'no subject');
  bad(`    - { uri: "not a uri", subject: s }\n`, /identity\.certificates\[0\]\.uri/, 'uri must look like one');
  bad(`    - { cn: a, subject: s }\n    - { cn: a, subject: t }\n`, /c\.yaml:5: identity\.certificates\[1\]: duplicate certificate mapping cn a/, 'duplicate CN');
  bad(`    - { cn: a, subject: s, issuer: x }\n`, /unknown key "issuer"/, 'unknown key');
});

t.test('config: tls.client_auth needs its own ca (never the public roots)', async (t) => {
  // The tls keys are common to every connector type: a stand-in module is enough here.
  const httpLike: ConnectorModule = {
    type: 'http',
    schema: { properties: { upstream: { type: 'object' } } },
    create: () => {
      throw new Error('not started');
    },
  };
  const conn = (tls: string) =>
    parseConfig(`data_dir: /tmp/x\nconnectors:\n  - { name: api, type: http, listen: 127.0.0.1:0, upstream: { url: "http://127.0.0.1:1" }, tls: ${tls} }\n`, 'c.yaml', {
      env: {},
      connectors: [httpLike],
    });
  const missing = conn('{ cert: a.pem, key: k.pem, client_auth: true }');
  t.notOk(missing.ok);
  if (!missing.ok) t.match(missing.error.message, /connectors\[0\]\.tls: client_auth needs cert, key and ca/);
  t.ok(conn('{ cert: a.pem, key: k.pem, ca: ca.pem, client_auth: true }').ok);
  t.ok(conn('{ cert: a.pem, key: k.pem }').ok, 'no client_auth: no ca needed');
});

t.test("SAN text: URI entries out of Node's subjectaltname, quoted ones decoded", async (t) => {
  t.same(sanURIsOf(undefined), []);
  t.same(sanURIsOf(''), []);
  t.same(sanURIsOf('DNS:a.example, URI:spiffe://x/y, IP Address:127.0.0.1, URI:https://b/'), ['spiffe://x/y', 'https://b/']);
  t.same(sanURIsOf('URI:"spiffe://x/a, URI:spiffe://evil"'), ['spiffe://x/a, URI:spiffe://evil'], 'a comma inside a value never splits it');
  t.same(sanURIsOf('DNS:"a\\"b", URI:u:1'), ['u:1']);
  t.same(sanURIsOf('URI:"unterminated'), [], 'unparseable text: no URIs at all');
  t.same(sanURIsOf('URI:a;URI:b'), ['a;URI:b'], 'only ", " separates');
  t.same(sanURIsOf('nonsense'), []);
});
