/**
 * `admin.tls` over real TLS: certificates made by openssl for this run, undici and curl as
 * clients. With cert/key the admin API is HTTPS only; with `client_auth` the handshake
 * refuses any client without a certificate signed by `ca` (health and metrics included),
 * and API roles still come from the bearer token.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Agent, request } from 'undici';
import { parseConfig } from '@gatehouse/core';
import { connectorModules, startGateway, type Gateway } from '@gatehouse/gateway';
import { TOKENS } from '../../lib/gateway.js';

const run = promisify(execFile);

/** A CA, a server certificate for 127.0.0.1, a client certificate, and one from another CA. */
async function makePki(dir: string) {
  const ssl = (...args: string[]) => run('openssl', args, { cwd: dir });
  const ca = (name: string) =>
    ssl('req', '-x509', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', `/CN=${name}`, '-keyout', `${name}.key`, '-out', `${name}.crt`);
  const leaf = async (name: string, caName: string, ext: string) => {
    writeFileSync(join(dir, `${name}.ext`), `basicConstraints=critical,CA:FALSE\n${ext}\n`);
    await ssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', `/CN=${name}`, '-keyout', `${name}.key`, '-out', `${name}.csr`);
    await ssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${caName}.crt`, '-CAkey', `${caName}.key`, '-CAcreateserial', '-days', '2', '-extfile', `${name}.ext`, '-out', `${name}.crt`);
  };
  await ca('ca');
  await ca('other-ca');
  await leaf('server', 'ca', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth');
  await leaf('operator', 'ca', 'extendedKeyUsage=clientAuth');
  await leaf('forged', 'other-ca', 'extendedKeyUsage=clientAuth');
  return { file: (n: string) => join(dir, n), pem: (n: string) => readFileSync(join(dir, n), 'utf8') };
}

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
  const dir = mkdtempSync(join(tmpdir(), 'gh-admin-tls-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const pki = await makePki(dir);
  const agents: Agent[] = [];
  t.teardown(() => Promise.all(agents.map((a) => a.close())));
  const agent = (client: string | null) => {
    const a = new Agent({ connect: { ca: pki.pem('ca.crt'), ...(client ? { cert: pki.pem(`${client}.crt`), key: pki.pem(`${client}.key`) } : {}) } });
    agents.push(a);
    return a;
  };
  const get = async (url: string, client: string | null, token?: string) => {
    const r = await request(url, { dispatcher: agent(client), headers: token ? { authorization: `Bearer ${token}` } : {} });
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
    await t.rejects(request(`${gw.adminUrl}/healthz`, { dispatcher: agents[agents.push(new Agent()) - 1] }), 'an untrusted server certificate fails verification');
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
    const curl = await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '--cacert', pki.file('ca.crt'), '--cert', pki.file('operator.crt'), '--key', pki.file('operator.key'), `${gw.adminUrl}/healthz`]);
    t.equal(curl.stdout, '200', 'curl --cert too');
    await t.rejects(run('curl', ['-sS', '--cacert', pki.file('ca.crt'), `${gw.adminUrl}/healthz`]), 'curl without a certificate fails');
  });

  await t.test('unreadable or mismatched key material stops the start, naming the key', async (t) => {
    await t.rejects(gatewayWith(dir, `{ cert: ${pki.file('server.crt')}, key: ${pki.file('missing.key')} }`), /admin\.tls\.key: cannot read .*missing\.key: ENOENT/);
    await t.rejects(gatewayWith(dir, `{ cert: ${pki.file('server.crt')}, key: ${pki.file('operator.key')} }`), /admin\.tls: .*key values mismatch/, 'a key that is not the certificate\'s');
  });
});
