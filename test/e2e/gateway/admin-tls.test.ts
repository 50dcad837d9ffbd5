/**
 * `admin.tls` over real TLS: certificates made by openssl for this run, undici and curl as
 * clients. With cert/key the admin API is HTTPS only; with `client_auth` the handshake
 * refuses any client without a certificate signed by `ca` (health and metrics included),
 * and API roles still come from the bearer token.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Agent, request } from 'undici';
import { parseConfig } from '@gatehouse/core';
import { connectorModules, startGateway, type Gateway } from '@gatehouse/gateway';
import { TOKENS } from '../../lib/gateway.js';
import { LEAF, makeTestPki } from '../../lib/pki.js';

const run = promisify(execFile);

const IDENTITY = `identity:
  static_tokens:
    - { token: "${TOKENS.auditor}", subject: alice, groups: [security] }
  roles:
    auditor: { groups: [security] }
`;

async function gatewayWith(dir: string, tls: string): Promise<Gateway> {
  const text = `data_dir: ${join(dir, 'data')}\nadmin:\n  listen: 127.0.0.1:0\n  tls: ${tls}\n${IDENTITY}`;
  const parsed = parseConfig(text, 'admin-tls.yaml', { env: {}, connectors: connectorModules });
  if (!parsed.ok) throw parsed.error;
  return startGateway(parsed.value, { logLevel: 'silent' });
}

t.test('admin.tls', async (t) => {
  const pki = await makeTestPki(t, [
    LEAF.server,
    { name: 'operator', ca: 'ca', ext: 'extendedKeyUsage=clientAuth' },
    { name: 'forged', ca: 'other-ca', ext: 'extendedKeyUsage=clientAuth' },
  ]);
  const dir = pki.dir;
  const get = async (url: string, client: string | null, token?: string) => {
    const r = await request(url, { dispatcher: pki.agent(client), headers: token ? { authorization: `Bearer ${token}` } : {} });
    return { status: r.statusCode, body: await r.body.text() };
  };

  await t.test('cert and key: HTTPS only, the API works as before', async (t) => {
    const gw = await gatewayWith(dir, `{ cert: ${pki.file('server.crt')}, key: ${pki.file('server.key')} }`);
    t.teardown(() => gw.stop(0));
    t.equal(gw.adminUrl, `https://${gw.admin}`);
    const health = await get(`${gw.adminUrl}/healthz`, null);
    t.equal(health.status, 200);
    t.match(JSON.parse(health.body), { status: 'ok' });
    t.equal((await get(`${gw.adminUrl}/api/v1/events`, null)).status, 401, 'still a bearer token for the API');
    t.equal((await get(`${gw.adminUrl}/api/v1/events`, null, TOKENS.auditor)).status, 200);
    const { stdout } = await run('curl', ['-sS', '--cacert', pki.file('ca.crt'), `${gw.adminUrl}/healthz`]);
    t.match(JSON.parse(stdout), { status: 'ok' }, 'curl verifies the certificate too');
    await t.rejects(fetch(`http://${gw.admin}/healthz`), 'plain HTTP is not served');
    // A client that does not trust the configured CA never gets an answer.
    const untrusting = new Agent();
    t.teardown(() => untrusting.close());
    await t.rejects(request(`${gw.adminUrl}/healthz`, { dispatcher: untrusting }), 'an untrusted server certificate fails verification');
  });

  await t.test('client_auth: every connection needs a certificate signed by ca', async (t) => {
    const gw = await gatewayWith(dir, `{ cert: ${pki.file('server.crt')}, key: ${pki.file('server.key')}, ca: ${pki.file('ca.crt')}, client_auth: true }`);
    t.teardown(() => gw.stop(0));
    const ok = await get(`${gw.adminUrl}/healthz`, 'operator');
    t.equal(ok.status, 200, 'a certificate from the CA: served');
    t.equal((await get(`${gw.adminUrl}/api/v1/events`, 'operator')).status, 401, 'the certificate is no API identity: a token is still needed');
    t.equal((await get(`${gw.adminUrl}/api/v1/events`, 'operator', TOKENS.auditor)).status, 200);
    await t.rejects(get(`${gw.adminUrl}/healthz`, null), 'no certificate: refused, /healthz included');
    await t.rejects(get(`${gw.adminUrl}/metrics`, 'forged'), 'a certificate from another CA: refused');
    const curl = await run('curl', [
      '-sS',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '--cacert',
      pki.file('ca.crt'),
      '--cert',
      pki.file('operator.crt'),
      '--key',
      pki.file('operator.key'),
      `${gw.adminUrl}/healthz`,
    ]);
    t.equal(curl.stdout, '200', 'curl --cert too');
    await t.rejects(run('curl', ['-sS', '--cacert', pki.file('ca.crt'), `${gw.adminUrl}/healthz`]), 'curl without a certificate fails');
  });

  await t.test('unreadable or mismatched key material stops the start, naming the key', async (t) => {
    await t.rejects(gatewayWith(dir, `{ cert: ${pki.file('server.crt')}, key: ${pki.file('missing.key')} }`), /admin\.tls\.key: cannot read .*missing\.key: ENOENT/);
    await t.rejects(
      gatewayWith(dir, `{ cert: ${pki.file('server.crt')}, key: ${pki.file('operator.key')} }`),
      /admin\.tls: .*key values mismatch/,
      "a key that is not the certificate's",
    );
  });
});
