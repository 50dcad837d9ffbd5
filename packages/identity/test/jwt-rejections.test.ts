/**
 * Tokens an attacker (or a confused client) might present, signed with keys published
 * by a JWKS server the test controls: each must be refused with its precise code.
 */
import t from 'tap';
import { createPublicKey } from 'node:crypto';
import { SignJWT } from 'jose';
import { createAuthenticator, type IdentityConfig } from '@gatehouse/identity';
import { makeKey, sign, startKeyServer, testClock } from './helpers/key-server.js';

const code = (r: { ok: boolean; error?: { code: string } }) => (r.ok ? 'ok' : r.error!.code);

t.test('rejections', async (t) => {
  const ks = await startKeyServer();
  const key = await makeKey('k1', 'ES256');
  const rsa = await makeKey('r1', 'RS256');
  ks.publish([key, rsa]);
  const clock = testClock();
  const cfg = (over: Partial<IdentityConfig['oidc'][number]> = {}): IdentityConfig => ({
    oidc: [{ issuer: ks.issuer, audience: 'gatehouse', jwks_url: ks.jwksUrl, groups_claim: 'groups', algorithms: ['ES256'], clock_tolerance: 30, ...over }],
    static_tokens: [],
    roles: {},
  });
  const auth = createAuthenticator(cfg(), { now: clock.now });
  t.teardown(async () => {
    auth.close();
    await ks.close();
  });
  const claims = (over: Record<string, unknown> = {}) => ({
    iss: ks.issuer,
    aud: 'gatehouse',
    sub: 'svc:a',
    groups: ['payments'],
    iat: clock.sec(),
    exp: clock.sec(300),
    ...over,
  });

  t.test('a good token passes; jwks_url is used without discovery', async (t) => {
    const r = await auth.authenticate(await sign(key, claims()));
    t.equal(code(r), 'ok');
    t.equal(ks.discoveryFetches(), 0);
    t.equal(ks.jwksFetches(), 1);
  });

  t.test('alg none is refused before any key lookup', async (t) => {
    const before = ks.jwksFetches();
    const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const none = `${enc({ alg: 'none', typ: 'JWT' })}.${enc(claims())}.`;
    t.equal(code(await auth.authenticate(none)), 'auth.algorithm');
    t.equal(ks.jwksFetches(), before);
  });

  t.test('HS256 signed with the public key as the secret is refused, even if configured', async (t) => {
    const pem = createPublicKey({ key: key.publicJwk as never, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
    const forged = await new SignJWT(claims()).setProtectedHeader({ alg: 'HS256', kid: 'k1' }).sign(Buffer.from(pem));
    t.equal(code(await auth.authenticate(forged)), 'auth.algorithm');
    const careless = createAuthenticator(cfg({ algorithms: ['ES256', 'HS256', 'none'] }), { now: clock.now });
    t.teardown(() => careless.close());
    t.equal(code(await careless.authenticate(forged)), 'auth.algorithm', 'HS* can never be enabled');
  });

  t.test('an asymmetric algorithm not in the list is refused', async (t) => {
    t.equal(code(await auth.authenticate(await sign(rsa, claims()))), 'auth.algorithm');
    const rsaOk = createAuthenticator(cfg({ algorithms: ['RS256'] }), { now: clock.now });
    t.teardown(() => rsaOk.close());
    t.equal(code(await rsaOk.authenticate(await sign(rsa, claims()))), 'ok', 'and accepted once listed');
  });

  t.test('a kid naming a key of another type finds no key (no algorithm confusion)', async (t) => {
    const confused = await sign(key, claims(), { kid: 'r1' });
    t.equal(code(await auth.authenticate(confused)), 'auth.unknown_key');
  });

  t.test('nbf in the future beyond the tolerance; within it passes', async (t) => {
    t.equal(code(await auth.authenticate(await sign(key, claims({ nbf: clock.sec(120) })))), 'auth.not_yet_valid');
    t.equal(code(await auth.authenticate(await sign(key, claims({ nbf: clock.sec(20) })))), 'ok');
  });

  t.test('expired beyond the tolerance; within it passes', async (t) => {
    t.equal(code(await auth.authenticate(await sign(key, claims({ exp: clock.sec(-60) })))), 'auth.expired');
    t.equal(code(await auth.authenticate(await sign(key, claims({ exp: clock.sec(-10) })))), 'ok');
  });

  t.test('wrong audience, wrong or missing issuer', async (t) => {
    t.equal(code(await auth.authenticate(await sign(key, claims({ aud: 'elsewhere' })))), 'auth.audience');
    t.equal(code(await auth.authenticate(await sign(key, claims({ iss: 'https://evil.example/' })))), 'auth.issuer');
    t.equal(code(await auth.authenticate(await sign(key, claims({ iss: undefined })))), 'auth.issuer');
  });

  t.test('no exp or no sub: a caller identity must be short-lived and named', async (t) => {
    t.equal(code(await auth.authenticate(await sign(key, claims({ exp: undefined })))), 'auth.invalid');
    t.equal(code(await auth.authenticate(await sign(key, claims({ sub: undefined })))), 'auth.invalid');
  });

  t.test('signature of another key under a published kid', async (t) => {
    const impostor = await makeKey('k1', 'ES256');
    t.equal(code(await auth.authenticate(await sign(impostor, claims()))), 'auth.signature');
  });

  t.test('shapes: missing, malformed, oversize, not JSON', async (t) => {
    t.equal(code(await auth.authenticate('')), 'auth.missing');
    t.equal(code(await auth.authenticate(undefined as unknown as string)), 'auth.missing');
    t.equal(code(await auth.authenticate('a.b')), 'auth.malformed');
    t.equal(code(await auth.authenticate('a.b.c.d.e')), 'auth.malformed', 'JWE is not accepted');
    t.equal(code(await auth.authenticate('abc.def.ghi')), 'auth.malformed');
    t.equal(code(await auth.authenticate('x'.repeat(20_000) + '.a.b')), 'auth.malformed');
    t.equal(code(await auth.authenticate('has space')), 'auth.malformed');
    t.equal(code(await auth.authenticate('no-static-tokens-configured')), 'auth.malformed');
  });

  t.test('no token reaches the log, accepted or refused', async (t) => {
    const lines: string[] = [];
    const rec = (o: object | string, m?: string) => void lines.push(JSON.stringify(o) + (m ?? ''));
    const logger = { debug: rec, info: rec, warn: rec, error: rec, child: () => logger };
    const logged = createAuthenticator(cfg(), { now: clock.now, logger });
    t.teardown(() => logged.close());
    const tokens = [await sign(key, claims()), await sign(key, claims({ aud: 'x' })), await sign(await makeKey('nope'), claims()), await sign(rsa, claims())];
    for (const tk of tokens) await logged.authenticate(tk);
    t.ok(lines.length > 0, 'something was logged');
    const all = lines.join('\n');
    t.notOk(
      tokens.some((tk) => all.includes(tk) || all.includes(tk.split('.')[2])),
      'no token or signature in the log',
    );
  });
});
