/**
 * Against a real OpenID Provider (oidc-provider, client-credentials grant, JWT access
 * tokens): discovery, JWKS, audience, expiry, tampering, the verified-token cache.
 */
import t from 'tap';
import { createAuthenticator, type IdentityConfig } from '@gatehouse/identity';
import { AUDIENCE, startProvider } from './helpers/provider.js';
import { testClock } from './helpers/key-server.js';

const config = (issuer: string, over: Partial<IdentityConfig['oidc'][number]> = {}): IdentityConfig => ({
  oidc: [{ issuer, audience: AUDIENCE, groups_claim: 'groups', algorithms: ['ES256', 'RS256'], clock_tolerance: 30, ...over }],
  static_tokens: [],
  roles: {},
});

t.test('real provider', async (t) => {
  const idp = await startProvider();
  t.teardown(() => idp.close());

  t.test('a client-credentials token yields the identity, found by discovery', async (t) => {
    const auth = createAuthenticator(config(idp.issuer));
    t.teardown(() => auth.close());
    const token = await idp.token('svc-billing');
    const r = await auth.authenticate(token);
    if (!r.ok) return t.fail(`rejected: ${r.error.code} ${r.error.message}`);
    t.equal(r.value.subject, 'svc-billing');
    t.equal(r.value.issuer, idp.issuer);
    t.same(r.value.groups, ['payments', 'billing']);
    t.equal(r.value.claims.aud, AUDIENCE);
    t.notOk(JSON.stringify(r.value).includes(token), 'the raw token is nowhere in the identity');
    t.ok(Object.isFrozen(r.value) && Object.isFrozen(r.value.claims), 'shared identity is immutable');
    const other = await auth.authenticate(await idp.token('svc-reporting'));
    t.ok(other.ok && other.value.subject === 'svc-reporting' && other.value.groups[0] === 'analytics');
    t.equal(idp.discoveryFetches(), 1, 'discovery once');
    t.equal(idp.jwksFetches(), 1, 'key set fetched once for both tokens');
  });

  t.test('same token again is a cache hit; a storm of one fresh token verifies it once', async (t) => {
    const auth = createAuthenticator(config(idp.issuer));
    t.teardown(() => auth.close());
    const token = await idp.token('svc-billing');
    const before = idp.jwksFetches();
    const storm = await Promise.all(Array.from({ length: 50 }, () => auth.authenticate(token)));
    t.ok(
      storm.every((r) => r.ok),
      'all 50 accepted',
    );
    const first = storm[0];
    t.ok(
      storm.every((r) => r.ok && first.ok && r.value === first.value),
      'one verification shared by all',
    );
    const again = await auth.authenticate(token);
    t.ok(again.ok && first.ok && again.value === first.value, 'cached identity returned');
    t.equal(idp.jwksFetches() - before, 1, 'one key fetch for the whole storm');
  });

  t.test('wrong audience: token for another resource, or gateway expecting another audience', async (t) => {
    const auth = createAuthenticator(config(idp.issuer));
    const strict = createAuthenticator(config(idp.issuer, { audience: ['other-gateway', 'third'] }));
    t.teardown(() => (auth.close(), strict.close()));
    const forOther = await auth.authenticate(await idp.token('svc-billing', 'urn:other'));
    t.equal(forOther.ok ? 'ok' : forOther.error.code, 'auth.audience');
    const good = await idp.token('svc-billing');
    const r = await strict.authenticate(good);
    t.equal(r.ok ? 'ok' : r.error.code, 'auth.audience');
    t.notOk(!r.ok && r.error.message.includes(good), 'message does not echo the token');
  });

  t.test('an issuer that is not configured is rejected without a fetch', async (t) => {
    const auth = createAuthenticator(config('https://idp.example.invalid/'));
    t.teardown(() => auth.close());
    const before = idp.jwksFetches() + idp.discoveryFetches();
    const r = await auth.authenticate(await idp.token('svc-billing'));
    t.equal(r.ok ? 'ok' : r.error.code, 'auth.issuer');
    t.equal(idp.jwksFetches() + idp.discoveryFetches(), before);
  });

  t.test('expired: past exp plus clock tolerance, the provider token is refused (also from cache)', async (t) => {
    const clock = testClock();
    const auth = createAuthenticator(config(idp.issuer, { clock_tolerance: 5 }), { now: clock.now });
    t.teardown(() => auth.close());
    const token = await idp.token('svc-billing');
    const exp = (JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()) as { exp: number }).exp;
    t.ok((await auth.authenticate(token)).ok, 'valid now (and cached)');
    clock.t = (exp + 6) * 1000;
    const r = await auth.authenticate(token);
    t.equal(r.ok ? 'ok' : r.error.code, 'auth.expired');
  });

  t.test('tampered: a claim rewritten under the original signature, or a flipped signature byte', async (t) => {
    const auth = createAuthenticator(config(idp.issuer));
    t.teardown(() => auth.close());
    const token = await idp.token('svc-reporting');
    const [h, p, s] = token.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
    claims.groups = ['platform'];
    const forged = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`;
    const r1 = await auth.authenticate(forged);
    t.equal(r1.ok ? 'ok' : r1.error.code, 'auth.signature');
    const i = Math.floor(s.length / 2);
    const flipped = `${h}.${p}.${s.slice(0, i)}${s[i] === 'A' ? 'B' : 'A'}${s.slice(i + 1)}`;
    const r2 = await auth.authenticate(flipped);
    t.equal(r2.ok ? 'ok' : r2.error.code, 'auth.signature');
    t.ok((await auth.authenticate(token)).ok, 'the untouched token still passes');
  });
});
