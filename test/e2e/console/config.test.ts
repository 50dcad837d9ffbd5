/**
 * The `console` key: what the loader refuses, what the start refuses (a cookie that would
 * travel in clear off this machine, an IdP over plain http), and that an https console
 * origin makes the cookies Secure with the `__Host-` prefix.
 */
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '@gatehouse/core';
import { connectorModules, startGateway } from '@gatehouse/gateway';
import { CONSOLE_CLIENT, startIdp } from './helpers/idp.js';

const yaml = (dataDir: string, admin: string, oidc: string) =>
  `data_dir: ${JSON.stringify(dataDir)}\nadmin: { listen: ${admin} }\nidentity:\n  roles:\n    reviewer: { groups: [dba] }\nconsole:\n  oidc: ${oidc}\n`;

t.test('console configuration', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'gh-console-cfg-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const parse = (admin: string, oidc: string) => parseConfig(yaml(dataDir, admin, oidc), 'c.yaml', { env: {}, connectors: connectorModules });
  const good = '{ issuer: "https://idp.example.com/", client_id: gh, client_secret: s3cret, redirect_url: "https://gh.example.com/ui/callback" }';

  t.test('the loader refuses a console block that could not work', async (t) => {
    t.ok(parse('127.0.0.1:0', good).ok, 'a complete block loads');
    const missing = parse('127.0.0.1:0', '{ issuer: "https://idp.example.com/", client_id: gh, redirect_url: "https://gh.example.com/ui/callback" }');
    t.notOk(missing.ok);
    t.match(!missing.ok && missing.error.message, /client_secret/, 'client_secret is required');
    const path = parse('127.0.0.1:0', '{ issuer: "https://idp.example.com/", client_id: gh, client_secret: s, redirect_url: "https://gh.example.com/callback" }');
    t.notOk(path.ok, 'a redirect_url whose path is not /ui/callback');
    t.match(!path.ok && path.error.message, /redirect_url/);
    const extra = parse('127.0.0.1:0', good.replace(' }', ', scopes: [openid] }'));
    t.notOk(extra.ok, 'an unknown key');
    t.notOk(parse('127.0.0.1:0', good.replace('https://idp.example.com/', 'idp.example.com')).ok, 'an issuer that is not a URL');
  });

  t.test('the start refuses clear-text cookies off loopback and an http IdP off loopback', async (t) => {
    const start = async (admin: string, oidc: string) => {
      const c = parse(admin, oidc);
      if (!c.ok) throw new Error(c.error.message);
      const gw = await startGateway(c.value, { logLevel: 'silent' }).catch((e: Error) => e);
      if (!(gw instanceof Error)) {
        await gw.stop(0);
        return 'started';
      }
      return gw.message;
    };
    t.match(
      await start('0.0.0.0:0', '{ issuer: "https://idp.example.com/", client_id: gh, client_secret: s, redirect_url: "http://10.0.0.4:8080/ui/callback" }'),
      /allowed only on loopback/,
      'plain http admin on a public address',
    );
    t.match(
      await start('127.0.0.1:0', '{ issuer: "http://idp.example.com/", client_id: gh, client_secret: s, redirect_url: "http://127.0.0.1:8080/ui/callback" }'),
      /issuer: http:\/\/ is allowed only for a loopback IdP/,
    );
    t.equal(await start('0.0.0.0:0', good), 'started', 'TLS in front (an https redirect_url): accepted, cookies Secure');
  });

  t.test('an https console origin: Secure, __Host- cookies', async (t) => {
    const idp = await startIdp('https://gh.example.com/ui/callback');
    t.teardown(() => idp.close());
    const c = parse(
      '127.0.0.1:0',
      `{ issuer: "${idp.issuer}", client_id: ${CONSOLE_CLIENT.id}, client_secret: "${CONSOLE_CLIENT.secret}", redirect_url: "https://gh.example.com/ui/callback" }`,
    );
    if (!c.ok) throw new Error(c.error.message);
    const gw = await startGateway(c.value, { logLevel: 'silent' });
    t.teardown(() => gw.stop(0));
    const res = await fetch(`${gw.adminUrl}/ui/login`, { redirect: 'manual' });
    t.equal(res.status, 302);
    const location = new URL(res.headers.get('location') ?? '');
    t.equal(location.origin, idp.issuer, 'to the IdP');
    t.equal(location.searchParams.get('code_challenge_method'), 'S256', 'PKCE');
    t.equal(location.searchParams.get('redirect_uri'), 'https://gh.example.com/ui/callback');
    t.ok(location.searchParams.get('state') && location.searchParams.get('nonce'), 'state and nonce');
    const cookie = res.headers.get('set-cookie') ?? '';
    t.match(cookie, /^__Host-gatehouse_login=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Lax; Secure; Max-Age=600$/, 'the login cookie: Secure, __Host-, Lax');
  });
});
