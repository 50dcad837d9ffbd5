/**
 * JWKS life cycle: an unknown kid triggers one refetch, refetches are rate-limited per
 * issuer, a rotated-in key is accepted after the refetch, old keys serve through an IdP
 * outage for a bounded time, and every fetch has a deadline.
 */
import t from 'tap';
import { createAuthenticator, type IdentityConfig } from '@gatehouse/identity';
import { makeKey, sign, startKeyServer, testClock } from './helpers/key-server.js';

const code = (r: { ok: boolean; error?: { code: string } }) => (r.ok ? 'ok' : r.error!.code);

async function setup(t: { teardown(fn: () => unknown): void }, opts: { discovery?: boolean } = {}) {
  const ks = await startKeyServer();
  t.teardown(() => ks.close());
  const clock = testClock();
  const config: IdentityConfig = {
    oidc: [
      {
        issuer: ks.issuer,
        audience: 'gatehouse',
        ...(opts.discovery ? {} : { jwks_url: ks.jwksUrl }),
        groups_claim: 'groups',
        algorithms: ['ES256', 'EdDSA'],
        clock_tolerance: 30,
      },
    ],
    static_tokens: [],
    roles: {},
  };
  const claims = () => ({ iss: ks.issuer, aud: 'gatehouse', sub: 'svc:a', exp: clock.sec(3600) });
  return { ks, clock, config, claims };
}

t.test('unknown kid: one refetch per cooldown, then rotation is picked up', async (t) => {
  const { ks, clock, config, claims } = await setup(t);
  const k1 = await makeKey('k1');
  const k2 = await makeKey('k2', 'EdDSA');
  ks.publish([k1]);
  const auth = createAuthenticator(config, { now: clock.now, jwksCooldownMs: 30_000 });
  t.teardown(() => auth.close());

  t.equal(code(await auth.authenticate(await sign(k1, claims()))), 'ok');
  t.equal(ks.jwksFetches(), 1, 'first use loads the key set');

  // Within the cooldown of that load, an unknown kid is refused without a fetch.
  const early = await sign(k2, claims());
  t.equal(code(await auth.authenticate(early)), 'auth.unknown_key');
  t.equal(ks.jwksFetches(), 1, 'no refetch inside the cooldown');

  clock.advance(31_000);
  const stranger = await makeKey('k-unpublished');
  t.equal(code(await auth.authenticate(await sign(stranger, claims()))), 'auth.unknown_key');
  t.equal(ks.jwksFetches(), 2, 'one refetch for the unknown kid');

  // A flood of made-up kids, serial and concurrent: no further fetch.
  for (let i = 0; i < 5; i++) t.equal(code(await auth.authenticate(await sign(await makeKey(`x${i}`), claims()))), 'auth.unknown_key');
  const flood = await Promise.all(Array.from({ length: 20 }, async (_, i) => auth.authenticate(await sign(await makeKey(`y${i}`), claims()))));
  t.ok(flood.every((r) => code(r) === 'auth.unknown_key'));
  t.equal(ks.jwksFetches(), 2, 'rate limit holds under a flood');

  // Rotation: k2 is published; it is accepted once the cooldown allows the refetch.
  ks.publish([k1, k2]);
  t.equal(code(await auth.authenticate(await sign(k2, { ...claims(), jti: 'a' }))), 'auth.unknown_key', 'still cooling down');
  clock.advance(31_000);
  t.equal(code(await auth.authenticate(await sign(k2, { ...claims(), jti: 'b' }))), 'ok', 'rotated-in key accepted');
  t.equal(ks.jwksFetches(), 3);
  t.equal(code(await auth.authenticate(await sign(k1, { ...claims(), jti: 'c' }))), 'ok', 'old key still published and accepted');

  // Rotation out: k1 withdrawn; after the key set ages out, k1 tokens fail.
  ks.publish([k2]);
  clock.advance(600_001);
  t.equal(code(await auth.authenticate(await sign(k1, { ...claims(), jti: 'd' }))), 'auth.unknown_key');
  t.equal(ks.jwksFetches(), 4, 'aged key set refreshed once');
});

t.test('concurrent unknown kids share one fetch', async (t) => {
  const { ks, clock, config, claims } = await setup(t);
  const k1 = await makeKey('k1');
  ks.publish([k1]);
  const auth = createAuthenticator(config, { now: clock.now });
  t.teardown(() => auth.close());
  const tokens = await Promise.all(Array.from({ length: 10 }, (_, i) => sign(k1, { ...claims(), jti: String(i) })));
  const rs = await Promise.all(tokens.map((tk) => auth.authenticate(tk)));
  t.ok(rs.every((r) => r.ok));
  t.equal(ks.jwksFetches(), 1, 'ten cold tokens, one fetch');
});

t.test('IdP outage: old keys serve for maxStale past maxAge, then fail closed; failed fetches are rate-limited too', async (t) => {
  const { ks, clock, config, claims } = await setup(t);
  const k1 = await makeKey('k1');
  ks.publish([k1]);
  const auth = createAuthenticator(config, { now: clock.now, cacheEntries: 0, jwksMaxAgeMs: 600_000, jwksMaxStaleMs: 3_600_000 });
  t.teardown(() => auth.close());
  t.equal(code(await auth.authenticate(await sign(k1, claims()))), 'ok');
  ks.failWith(503);
  clock.advance(600_001);
  t.equal(code(await auth.authenticate(await sign(k1, claims()))), 'ok', 'stale keys still used');
  t.equal(ks.jwksFetches(), 2, 'refresh was attempted');
  for (let i = 0; i < 5; i++) t.equal(code(await auth.authenticate(await sign(k1, { ...claims(), jti: String(i) }))), 'ok');
  t.equal(ks.jwksFetches(), 2, 'failed refresh not retried inside the cooldown');
  clock.advance(3_600_000);
  t.equal(code(await auth.authenticate(await sign(k1, claims()))), 'auth.jwks_unavailable', 'too old: fail closed');
  ks.failWith(0);
  clock.advance(31_000);
  t.equal(code(await auth.authenticate(await sign(k1, claims()))), 'ok', 'recovers once the IdP answers');
});

t.test('cold start with the IdP down: jwks_unavailable, one attempt per cooldown', async (t) => {
  const { ks, clock, config, claims } = await setup(t);
  ks.failWith(500);
  const auth = createAuthenticator(config, { now: clock.now });
  t.teardown(() => auth.close());
  const k1 = await makeKey('k1');
  ks.publish([k1]);
  for (let i = 0; i < 3; i++) t.equal(code(await auth.authenticate(await sign(k1, { ...claims(), jti: String(i) }))), 'auth.jwks_unavailable');
  t.equal(ks.jwksFetches(), 1);
});

t.test('a JWKS server that never answers is cut off by the fetch timeout', async (t) => {
  const { ks, clock, config, claims } = await setup(t);
  ks.hang(true);
  const auth = createAuthenticator(config, { now: clock.now, fetchTimeoutMs: 200 });
  t.teardown(() => auth.close());
  const k1 = await makeKey('k1');
  const r = await auth.authenticate(await sign(k1, claims()));
  t.equal(code(r), 'auth.jwks_unavailable');
  t.notOk(!r.ok && /k1|eyJ/.test(r.error.message), 'message names no key or token');
});

t.test('discovery: used when jwks_url is absent, and must name the same issuer', async (t) => {
  const { ks, clock, config, claims } = await setup(t, { discovery: true });
  const k1 = await makeKey('k1');
  ks.publish([k1]);
  ks.discoveryIssuer('https://someone-else.example/');
  const auth = createAuthenticator(config, { now: clock.now });
  t.teardown(() => auth.close());
  t.equal(code(await auth.authenticate(await sign(k1, claims()))), 'auth.jwks_unavailable', 'mismatched discovery refused');
  t.equal(ks.jwksFetches(), 0, 'keys not fetched from a mismatched document');
  ks.discoveryIssuer(ks.issuer);
  clock.advance(31_000);
  t.equal(code(await auth.authenticate(await sign(k1, claims()))), 'ok');
  t.equal(ks.discoveryFetches(), 2);
  t.equal(ks.jwksFetches(), 1);
});
