/**
 * TLS on both sides of the MySQL connector. Caller side: a configured certificate (verified
 * by mysql2 against the test CA), and `tls.client_auth` — a mapped client certificate logs in
 * without a password, an unmapped one needs a token, none never gets past TLS. Upstream:
 * `upstream.tls.mode` against a throwaway MariaDB with TLS whose user REQUIRES SSL:
 * verify-full (with `ca`; a wrong CA fails), require, prefer use TLS; disable does not.
 */
import t from 'tap';
import { readEvents } from '@gatehouse/audit';
import { startTestGateway, TOKENS } from '../../lib/gateway.js';
import { LEAF, makeTestPki, mtlsIdentityYaml } from '../../lib/pki.js';
import { gatewayConn, startTlsMariadb } from './my-env.js';

t.test('mysql connector: TLS on both sides', async (t) => {
  const pki = await makeTestPki(t, [LEAF.server, LEAF.mapped, LEAF.unmapped, LEAF.forged]);
  const upstream = await startTlsMariadb(t, pki);
  const up = (mode: string, ca?: string) =>
    `{ address: ${upstream.address}, database: mysql, user: ${upstream.user}, password: "\${env:UP_PW}", tls: { mode: ${mode}${ca ? `, ca: ${ca}` : ''} } }`;
  const tg = await startTestGateway({
    env: { UP_PW: upstream.password },
    yaml: `
audit: { durability: strict }
${mtlsIdentityYaml()}connectors:
  - name: verify
    type: mysql
    listen: 127.0.0.1:0
    tls: { cert: ${pki.file('server.crt')}, key: ${pki.file('server.key')} }
    upstream: ${up('verify-full', pki.file('ca.crt'))}
    allow: [ { groups: [payments] } ]
  - name: wrong-ca
    type: mysql
    listen: 127.0.0.1:0
    upstream: ${up('verify-full', pki.file('other-ca.crt'))}
    allow: [ { groups: [payments] } ]
  - name: require
    type: mysql
    listen: 127.0.0.1:0
    upstream: ${up('require')}
    allow: [ { groups: [payments] } ]
  - name: prefer
    type: mysql
    listen: 127.0.0.1:0
    upstream: ${up('prefer')}
    allow: [ { groups: [payments] } ]
  - name: disable
    type: mysql
    listen: 127.0.0.1:0
    upstream: ${up('disable')}
    allow: [ { groups: [payments] } ]
  - name: mtls
    type: mysql
    listen: 127.0.0.1:0
    tls: { cert: ${pki.file('server.crt')}, key: ${pki.file('server.key')}, ca: ${pki.file('ca.crt')}, client_auth: true }
    upstream: ${up('verify-full', pki.file('ca.crt'))}
    allow: [ { groups: [payments] } ]
`,
  });
  t.teardown(() => tg.stop());
  const cipher = async (name: string) => {
    const c = await gatewayConn(tg.address(name), TOKENS.billing, { ssl: { rejectUnauthorized: false } });
    try {
      const [rows] = await c.query("SHOW SESSION STATUS LIKE 'Ssl_cipher'");
      return (rows as { Value: string }[])[0]?.Value ?? '';
    } finally {
      await c.end();
    }
  };

  t.test('caller side: the configured certificate verifies against its CA', async (t) => {
    const c = await gatewayConn(tg.address('verify'), TOKENS.billing, { ssl: { ca: pki.pem('ca.crt') } });
    t.same((await c.query('SELECT 1 AS one'))[0], [{ one: 1 }]);
    await c.end();
  });

  t.test('upstream tls.mode: verify-full, require and prefer use TLS; disable does not; a wrong CA fails', async (t) => {
    t.not(await cipher('verify'), '', 'verify-full');
    t.not(await cipher('require'), '', 'require');
    t.not(await cipher('prefer'), '', 'prefer');
    await t.rejects(cipher('disable'), { message: /upstream login failed.*Access denied/ }, 'disable: the REQUIRE SSL user is refused in clear text');
    await t.rejects(cipher('wrong-ca'), { message: /upstream login failed: upstream TLS failed/ });
  });

  t.test('tls.client_auth: a mapped certificate logs in without a password; an unmapped one needs a token; none is refused', async (t) => {
    const addr = tg.address('mtls');
    const mapped = await gatewayConn(addr, '', { ssl: { ca: pki.pem('ca.crt'), cert: pki.pem('mapped.crt'), key: pki.pem('mapped.key') } });
    t.same((await mapped.query('SELECT 1 AS one'))[0], [{ one: 1 }]);
    await mapped.end();
    const unmapped = await gatewayConn(addr, TOKENS.billing, { ssl: { ca: pki.pem('ca.crt'), cert: pki.pem('unmapped.crt'), key: pki.pem('unmapped.key') } });
    t.same((await unmapped.query('SELECT 2 AS two'))[0], [{ two: 2 }]);
    await unmapped.end();
    await t.rejects(gatewayConn(addr, '', { ssl: { ca: pki.pem('ca.crt'), cert: pki.pem('unmapped.crt'), key: pki.pem('unmapped.key') } }));
    await t.rejects(gatewayConn(addr, TOKENS.billing, { ssl: { ca: pki.pem('ca.crt') } }), 'no certificate: TLS fails');
    await t.rejects(gatewayConn(addr, TOKENS.billing, { ssl: { ca: pki.pem('ca.crt'), cert: pki.pem('forged.crt'), key: pki.pem('forged.key') } }), 'another CA');
    await t.rejects(gatewayConn(addr, TOKENS.billing), { message: /TLS with a client certificate is required/ }, 'clear text, even on loopback');
    const starts = readEvents(tg.dataDir, { connector: 'mtls', kind: 'session.start', limit: 100 });
    t.ok(
      starts.some((e) => e.identity?.issuer === 'mtls'),
      'the mapped certificate identified the caller',
    );
  });
});
