/** The verified-token cache: a hit is free, but never outlives the token's exp. */
import t from 'tap';
import { createAuthenticator, type IdentityConfig } from '@gatehouse/identity';
import { makeKey, sign, startKeyServer, testClock } from './helpers/key-server.js';

t.test('verified-token cache', async (t) => {
  const ks = await startKeyServer();
  t.teardown(() => ks.close());
  const key = await makeKey('k1');
  ks.publish([key]);
  const clock = testClock();
  const config: IdentityConfig = {
    oidc: [{ issuer: ks.issuer, audience: 'gatehouse', jwks_url: ks.jwksUrl, groups_claim: 'groups', algorithms: ['ES256'], clock_tolerance: 30 }],
    static_tokens: [],
    roles: {},
  };
  const claims = (exp: number, jti: string) => ({ iss: ks.issuer, aud: 'gatehouse', sub: 'svc:a', exp, jti });

  t.test('hit returns the same identity; past exp the cache does not answer', async (t) => {
    const auth = createAuthenticator(config, { now: clock.now });
    t.teardown(() => auth.close());
    const exp = clock.sec(60);
    const token = await sign(key, claims(exp, 'one'));
    const a = await auth.authenticate(token);
    const b = await auth.authenticate(token);
    if (!a.ok || !b.ok) return t.fail('should verify');
    t.equal(a.value, b.value, 'second call served from the cache');
    // One second past exp: inside the 30 s tolerance, so a fresh verification still passes —
    // but it must be a fresh verification (a new object), not the cached answer.
    clock.t = (exp + 1) * 1000;
    const c = await auth.authenticate(token);
    if (!c.ok) return t.fail(`tolerance should accept: ${c.error.code}`);
    t.not(c.value, a.value, 'cache entry expired at exp');
    const d = await auth.authenticate(token);
    t.ok(d.ok && d.value !== c.value, 'and is not re-cached past exp');
    clock.t = (exp + 31) * 1000;
    const e = await auth.authenticate(token);
    t.equal(e.ok ? 'ok' : e.error.code, 'auth.expired');
  });

  t.test('bounded: the least recently used entry is evicted', async (t) => {
    const auth = createAuthenticator(config, { now: clock.now, cacheEntries: 2 });
    t.teardown(() => auth.close());
    const exp = clock.sec(600);
    const [t1, t2, t3] = await Promise.all(['a', 'b', 'c'].map((j) => sign(key, claims(exp, j))));
    const first = async (tk: string) => {
      const r = await auth.authenticate(tk);
      if (!r.ok) throw new Error(r.error.code);
      return r.value;
    };
    const i1 = await first(t1);
    const i2 = await first(t2);
    t.equal(await first(t1), i1, 't1 hit (now most recent)');
    await first(t3); // evicts t2, the least recently used
    t.equal(await first(t1), i1, 't1 kept');
    t.not(await first(t2), i2, 't2 was evicted and verified afresh');
  });

  t.test('close() drops the cache and refuses further work', async (t) => {
    const auth = createAuthenticator(config, { now: clock.now });
    const token = await sign(key, claims(clock.sec(600), 'z'));
    t.ok((await auth.authenticate(token)).ok);
    auth.close();
    const r = await auth.authenticate(token);
    t.equal(r.ok ? 'ok' : r.error.code, 'auth.invalid');
  });
});
