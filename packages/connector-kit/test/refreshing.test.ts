/**
 * RefreshingSnapshot: one load shared by every waiter, reloads on invalidate / TTL /
 * unknown (rate-limited), and a failed load leaves it stale and rejects (fail closed).
 */
import t from 'tap';
import { silentLogger } from '@gatehouse/core';
import { RefreshingSnapshot } from '../src/index.js';

t.test('loads once for concurrent waiters, reloads after invalidate, fails closed', async (t) => {
  let loads = 0;
  let fail = false;
  const s = new RefreshingSnapshot<{ version: number }>(
    async (version) => {
      loads++;
      await new Promise((r) => setTimeout(r, 10));
      if (fail) throw new Error('upstream down');
      return { version };
    },
    { ttlMs: 60_000, minReloadMs: 50, log: silentLogger, what: 'test catalog' },
  );
  t.equal(s.current, null);
  t.ok(s.needsLoad);
  const [a, b] = await Promise.all([s.ready(), s.ready()]);
  t.equal(loads, 1, 'one load for two waiters');
  t.equal(a, b);
  t.notOk(s.needsLoad);
  t.equal(await s.ready(), a, 'fresh: no reload');
  s.invalidate();
  t.ok(s.needsLoad, 'invalidated');
  const c = await s.ready();
  t.equal(loads, 2);
  t.equal(c.version, 2, 'versions increase');
  t.equal(s.refreshForUnknown(), null, 'an unknown right after a load does not reload');
  await new Promise((r) => setTimeout(r, 60));
  const d = s.refreshForUnknown();
  t.ok(d, 'later it does');
  await d;
  t.equal(loads, 3);
  fail = true;
  s.invalidate();
  await t.rejects(s.ready(), /upstream down/);
  t.ok(s.needsLoad, 'a failed load leaves it stale: the next decision tries again');
  t.equal(s.current?.version, 3, 'the last good snapshot stays readable');
});
