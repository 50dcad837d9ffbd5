import t from 'tap';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { readDurableSeq, readEvents, verifyLog, readLatestCheckpoint } from '../src/index.js';
import { appendMany, closedLog, event, open, tempDir, waitFor } from './helpers.js';

t.test('strict: an event is committed when append() resolves', async (t) => {
  const dir = tempDir(t);
  const log = await open(t, dir, { durability: 'strict' });
  t.equal(log.durability, 'strict');
  for (let i = 0; i < 20; i++) {
    const seq = await log.append(event(i));
    t.equal(seq, i + 1);
    // A separate read-only connection sees only committed data.
    const got = readEvents(dir, { sinceSeq: seq - 1, limit: 1 });
    t.equal(got[0]?.seq, seq, `event ${seq} visible to another connection at resolve time`);
    t.ok((readDurableSeq(dir) ?? 0) >= seq, `event ${seq} is within the durable watermark at resolve time`);
  }
});

t.test('batched: append() resolves on acceptance; the commit follows within the window', async (t) => {
  const dir = tempDir(t);
  // A window far longer than the test: nothing can be committed by timer meanwhile.
  const slow = await open(t, dir, { durability: 'batched', windowMs: 600_000 });
  const seqs = await appendMany(slow, 50);
  t.same(
    seqs,
    Array.from({ length: 50 }, (_, i) => i + 1),
  );
  t.equal(readEvents(dir, {}).length, 0, 'accepted but not yet committed');
  t.equal(await slow.size(), 50, 'size counts accepted events');
  await slow.close();
  t.equal(readEvents(dir, {}).length, 50, 'close() commits what was accepted');

  const fast = await open(t, dir, { durability: 'batched', windowMs: 5 });
  const seq = await fast.append(event(99));
  t.equal(seq, 51);
  t.ok(await waitFor(() => readEvents(dir, { sinceSeq: 50 }).length === 1), 'committed by the window timer');
  await fast.close();
  t.ok(verifyLog(dir).ok);
});

t.test('20,000 concurrent appends get distinct consecutive seqs in call order', async (t) => {
  for (const durability of ['strict', 'batched'] as const) {
    const dir = tempDir(t);
    const log = await open(t, dir, { durability });
    const seqs = await appendMany(log, 20_000);
    let inOrder = true;
    for (let i = 0; i < seqs.length; i++) if (seqs[i] !== i + 1) inOrder = false;
    t.ok(inOrder, `${durability}: seq i+1 for the i-th call`);
    t.equal(new Set(seqs).size, 20_000);
    await log.close();
    const r = verifyLog(dir);
    t.ok(r.ok, `${durability}: log verifies`);
    t.equal(r.size, 20_000);
  }
});

t.test('restart continues the sequence and the chain; old checkpoints still verify', async (t) => {
  const { dir, log: a } = await closedLog(t, 10);
  const cp = readLatestCheckpoint(dir)!;
  t.match(cp, /\n10\n/);

  const b = await open(t, dir, { durability: 'batched' });
  t.equal(b.verifierKey, a.verifierKey);
  t.equal(await b.size(), 10);
  const seqs = await appendMany(b, 10, 10);
  t.same(
    seqs,
    Array.from({ length: 10 }, (_, i) => i + 11),
  );
  await b.close();

  const [e10, e11] = readEvents(dir, { sinceSeq: 9, limit: 2 });
  t.equal(e11.prev, e10.hash, 'event 11 links to event 10');
  const r = verifyLog(dir, { checkpoint: cp });
  t.ok(r.ok, r.reason ?? 'verifies');
  t.equal(r.size, 20);
  t.ok(r.checkpoints >= 4, 'checkpoints from both runs verify');
});

t.test('the frontier is rebuilt from the leaves when the saved one is missing', async (t) => {
  const { dir } = await closedLog(t, 13);
  const db = new Database(join(dir, 'audit.db'));
  db.prepare("DELETE FROM meta WHERE key = 'frontier'").run();
  db.close();
  const b = await open(t, dir);
  await appendMany(b, 3, 13);
  await b.close();
  const r = verifyLog(dir);
  t.ok(r.ok, r.reason ?? 'verifies');
  t.equal(r.size, 16);
});

t.test('an event that cannot be encoded is refused alone', async (t) => {
  const dir = tempDir(t);
  const log = await open(t, dir);
  const results = await Promise.allSettled([
    log.append(event(1)),
    log.append({ ...event(2), meta: { n: 10n } }),
    log.append({ ...event(3), meta: { f: () => 1 } }),
    log.append(event(4)),
  ]);
  t.same(
    results.map((r) => r.status),
    ['fulfilled', 'rejected', 'rejected', 'fulfilled'],
  );
  t.equal((results[0] as PromiseFulfilledResult<number>).value, 1);
  t.equal((results[3] as PromiseFulfilledResult<number>).value, 2, 'no gap in the sequence');
  t.match((results[1] as PromiseRejectedResult).reason, { code: 'audit.rejected' });
  t.equal(log.failure, null, 'one bad event does not fail the log');
  await log.close();
  t.ok(verifyLog(dir).ok);
});

t.test('after close(), append rejects', async (t) => {
  const dir = tempDir(t);
  const log = await open(t, dir);
  await log.close();
  await t.rejects(log.append(event(1)), { code: 'audit.unavailable' });
  await log.close();
});
