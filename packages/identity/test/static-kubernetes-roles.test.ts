/**
 * Static development tokens, Kubernetes service-account tokens as an ordinary issuer
 * (groups from a dotted claim path), admin roles, and log hygiene across all of it.
 */
import t from 'tap';
import type { Identity, Logger } from '@gatehouse/core';
import { createAuthenticator, groupsFrom, readClaimPath, roleOf, type IdentityConfig } from '@gatehouse/identity';
import { makeKey, sign, startKeyServer, testClock } from './helpers/key-server.js';

/** A logger that keeps every line, to prove no token ever reaches it. */
function recordingLogger(lines: string[]): Logger {
  const rec =
    (level: string) =>
    (obj: object | string, msg?: string): void => {
      lines.push(`${level} ${typeof obj === 'string' ? obj : JSON.stringify(obj)} ${msg ?? ''}`);
    };
  const l: Logger = { debug: rec('debug'), info: rec('info'), warn: rec('warn'), error: rec('error'), child: () => l };
  return l;
}

const DEV = 'dev-token-billing-0123456789abcdef';
const OPS = 'dev-token-ops-0123456789abcdef';

t.test('static tokens: matched by hash, wrong ones refused, dotted ones ignored, never logged', async (t) => {
  const lines: string[] = [];
  const auth = createAuthenticator(
    {
      oidc: [],
      static_tokens: [
        { token: DEV, subject: 'svc:billing', groups: ['payments'] },
        { token: OPS, subject: 'ops', groups: ['platform'] },
        { token: 'dotted.static.token-0123', subject: 'dotted', groups: [] },
      ],
      roles: {},
    },
    { logger: recordingLogger(lines) },
  );
  t.teardown(() => auth.close());
  const r = await auth.authenticate(DEV);
  t.same(r.ok && { ...r.value, claims: undefined }, { subject: 'svc:billing', issuer: 'static', groups: ['payments'], claims: undefined });
  const o = await auth.authenticate(OPS);
  t.equal(o.ok && o.value.subject, 'ops');
  const wrong = await auth.authenticate(DEV.slice(0, -1) + 'X');
  t.equal(wrong.ok ? 'ok' : wrong.error.code, 'auth.invalid');
  t.equal((await auth.authenticate(DEV + 'x')).ok, false, 'a longer token does not match its prefix');
  const dotted = await auth.authenticate('dotted.static.token-0123');
  t.equal(dotted.ok ? 'ok' : dotted.error.code, 'auth.malformed', 'a dotted static token is routed as a JWT and fails');
  t.ok(
    lines.some((l) => l.includes('static tokens enabled')),
    'dev-only warning logged',
  );
  const all = lines.join('\n');
  for (const secret of [DEV, OPS, 'dotted.static.token-0123', DEV.slice(0, -1) + 'X']) t.notOk(all.includes(secret), 'no token in logs');
});

t.test('Kubernetes service-account token: an issuer like any other, groups from kubernetes.io.namespace', async (t) => {
  const ks = await startKeyServer();
  t.teardown(() => ks.close());
  const key = await makeKey('sa-key', 'ES256');
  ks.publish([key]);
  const clock = testClock();
  const K8S = 'https://kubernetes.default.svc.cluster.local';
  const lines: string[] = [];
  const config: IdentityConfig = {
    oidc: [{ issuer: K8S, audience: 'gatehouse', jwks_url: ks.jwksUrl, groups_claim: 'kubernetes.io.namespace', algorithms: ['ES256', 'RS256'], clock_tolerance: 30 }],
    static_tokens: [],
    roles: {},
  };
  const auth = createAuthenticator(config, { now: clock.now, logger: recordingLogger(lines) });
  t.teardown(() => auth.close());
  // The claim layout of a projected service-account token (TokenRequest API).
  const token = await sign(key, {
    aud: ['gatehouse'],
    exp: clock.sec(3600),
    iat: clock.sec(),
    nbf: clock.sec(),
    iss: K8S,
    sub: 'system:serviceaccount:payments:billing',
    'kubernetes.io': {
      namespace: 'payments',
      pod: { name: 'billing-7d9c', uid: '1b6f0f5e-0000-4000-8000-000000000001' },
      serviceaccount: { name: 'billing', uid: '1b6f0f5e-0000-4000-8000-000000000002' },
    },
  });
  const r = await auth.authenticate(token);
  if (!r.ok) return t.fail(`${r.error.code}: ${r.error.message}`);
  t.equal(r.value.subject, 'system:serviceaccount:payments:billing');
  t.equal(r.value.issuer, K8S);
  t.same(r.value.groups, ['payments']);
  t.notOk(lines.join('\n').includes(token), 'token not logged');
});

t.test('claim paths and group values', async (t) => {
  const claims = {
    groups: ['a', 'b', 3, ''],
    'kubernetes.io': { namespace: 'ns1', serviceaccount: { name: 'sa' } },
    realm_access: { roles: ['r1', 'r2'] },
    'a.b': { c: 'dotted-key' },
    a: { b: { c: 'nested' } },
  };
  t.same(groupsFrom(readClaimPath(claims, 'groups')), ['a', 'b'], 'non-strings and empties dropped');
  t.same(groupsFrom(readClaimPath(claims, 'kubernetes.io.namespace')), ['ns1']);
  t.same(groupsFrom(readClaimPath(claims, 'kubernetes.io.serviceaccount.name')), ['sa']);
  t.same(groupsFrom(readClaimPath(claims, 'realm_access.roles')), ['r1', 'r2']);
  t.equal(readClaimPath(claims, 'a.b.c'), 'dotted-key', 'longest key wins');
  t.same(groupsFrom(readClaimPath(claims, 'missing.path')), []);
  t.same(groupsFrom(readClaimPath(claims, 'kubernetes.io')), [], 'an object is no group');
});

t.test('roleOf maps groups and subjects to admin API roles', async (t) => {
  const id = (subject: string, groups: string[]): Identity => ({ subject, issuer: 'static', groups, claims: {} });
  const roles = { admin: { groups: ['platform'] }, reviewer: { groups: ['dba'], subjects: ['alice'] }, auditor: { groups: ['security', 'dba'] } };
  t.same(roleOf(id('x', ['platform']), roles), ['admin']);
  t.same(roleOf(id('x', ['dba']), roles), ['reviewer', 'auditor']);
  t.same(roleOf(id('alice', []), roles), ['reviewer']);
  t.same(roleOf(id('bob', ['payments']), roles), []);
  t.same(roleOf(id('x', ['platform']), {}), [], 'no roles configured: nobody');
});
