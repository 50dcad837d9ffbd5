/**
 * The console's session store and sign-in attempts on their own, with a test clock: idle
 * and absolute timeouts, the bound on their number, single use, and the CSRF comparison.
 */
import t from 'tap';
import type { Identity } from '@gatehouse/core';

// The console's internals are not exported by @gatehouse/gateway: loaded from its build output
// (this file runs from test/dist/e2e/console, its types come from the source-relative path).
const built = (file: string) => new URL(`../../../../gateway/dist/src/console/${file}`, import.meta.url).href;
const { csrfMatches, SessionStore } = (await import(built('sessions.js'))) as typeof import('../../../gateway/dist/src/console/sessions.js');
const { PendingLogins } = (await import(built('oidc.js'))) as typeof import('../../../gateway/dist/src/console/oidc.js');

const who = (subject: string): Identity => ({ subject, issuer: 'https://idp', groups: ['dba'], claims: {} });

t.test('sessions expire when idle and at their absolute age, and are bounded', async (t) => {
  let now = 0;
  const store = new SessionStore({ max: 2, idleMs: 1000, absoluteMs: 5000 }, () => now);
  const a = store.create(who('a'), ['reviewer']);
  t.equal(store.get(a.id)?.identity.subject, 'a');
  now = 900;
  t.ok(store.get(a.id), 'used within the idle time');
  now = 1800;
  t.ok(store.get(a.id), 'the idle clock restarted at the last use');
  now = 2900;
  t.equal(store.get(a.id), null, 'idle too long: gone');
  const b = store.create(who('b'), ['reviewer']);
  for (now = 3000; now < 8000; now += 900) t.ok(store.get(b.id), `alive at ${now}`);
  now = 8100;
  t.equal(store.get(b.id), null, 'absolute age reached, however busy');

  const c = store.create(who('c'), []);
  const d = store.create(who('d'), []);
  t.ok(store.get(c.id), 'c used last');
  store.create(who('e'), []);
  t.equal(store.size, 2, 'bounded');
  t.ok(store.get(c.id), 'the recently used one stays');
  t.equal(store.get(d.id), null, 'the least recently used one went');
  store.delete(c.id);
  t.equal(store.get(c.id), null, 'deleted at sign-out');
  t.equal(store.get('not-a-session-id'), null);
  t.equal(store.get(undefined), null);
});

t.test('CSRF tokens compare exactly', async (t) => {
  const s = new SessionStore().create(who('x'), ['admin']).session;
  t.ok(csrfMatches(s, s.csrf));
  t.notOk(csrfMatches(s, undefined));
  t.notOk(csrfMatches(s, ''));
  t.notOk(csrfMatches(s, s.csrf.slice(0, -1) + (s.csrf.endsWith('A') ? 'B' : 'A')));
  t.notOk(csrfMatches(s, s.csrf + 'x'));
});

t.test('a sign-in attempt is used once and expires after 10 minutes', async (t) => {
  let now = 0;
  const logins = new PendingLogins(() => now);
  const one = logins.start();
  t.not(one.login.state, one.login.nonce);
  t.ok(one.login.verifier.length >= 43, 'a PKCE verifier');
  t.same(logins.take(one.id), one.login);
  t.equal(logins.take(one.id), null, 'single use');
  const two = logins.start();
  now = 10 * 60_000 + 1;
  t.equal(logins.take(two.id), null, 'expired');
  t.equal(logins.take(undefined), null);
});
