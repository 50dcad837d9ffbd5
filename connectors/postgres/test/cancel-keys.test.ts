/** Gateway-issued cancel keys: a worker's index in the pid's high bits, secrets checked by the owner only. */
import t from 'tap';
import { CancelKeys, MAX_OWNER } from '../src/cancel-keys.js';

t.test('a single process: full pid range, nothing is foreign', async (t) => {
  const keys = new CancelKeys();
  const k = keys.issue({ pid: 42, secret: 7 });
  t.ok(k.pid > 0 && k.pid <= 0x7fffffff);
  t.equal(keys.foreignOwner(k.pid), null);
  t.same(keys.lookup(k.pid, k.secret), { pid: 42, secret: 7 });
  t.equal(keys.lookup(k.pid, k.secret ^ 1), null, 'a wrong secret matches nothing');
  keys.release(k.pid);
  t.equal(keys.lookup(k.pid, k.secret), null);
});

t.test('workers: the issuing index is in the high bits; other indexes are foreign', async (t) => {
  const w0 = new CancelKeys(0);
  const w3 = new CancelKeys(3);
  const wMax = new CancelKeys(MAX_OWNER);
  t.equal(MAX_OWNER, 255, '256 workers fit a positive int32 pid');
  for (let i = 0; i < 200; i++) {
    const a = w0.issue({ pid: i, secret: i });
    const b = w3.issue({ pid: i, secret: i });
    const c = wMax.issue({ pid: i, secret: i });
    t.ok(a.pid > 0 && b.pid > 0 && c.pid > 0 && c.pid <= 0x7fffffff, 'pids stay positive int32');
    if (w0.foreignOwner(a.pid) !== null || w3.foreignOwner(b.pid) !== null) t.fail('own key seen as foreign');
    if (w0.foreignOwner(b.pid) !== 3 || w3.foreignOwner(a.pid) !== 0 || w0.foreignOwner(c.pid) !== MAX_OWNER) t.fail('owner not recovered');
  }
  t.equal(w3.size, 200);
  t.equal(w0.foreignOwner(0), null, 'a nonsense pid is looked up locally (and matches nothing)');
  t.equal(w0.foreignOwner(-5), null);
  t.throws(() => new CancelKeys(256), RangeError);
  t.throws(() => new CancelKeys(-1), RangeError);
});
