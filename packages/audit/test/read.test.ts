import t from 'tap';
import { iterateEvents, readEvents, readLatestCheckpoint, readVerifierKey, verifyLog } from '../src/index.js';
import { appendMany, event, open, tempDir } from './helpers.js';

t.test('filters, order and limits', async (t) => {
  const dir = tempDir(t);
  const log = await open(t, dir, { durability: 'batched' });
  await appendMany(log, 30);
  await log.append(event(30, { kind: 'auth.failure', identity: null }));
  await log.close();

  const all = readEvents(dir, {});
  t.equal(all.length, 31);
  t.same(
    all.map((e) => e.seq),
    Array.from({ length: 31 }, (_, i) => i + 1),
    'ascending seq',
  );
  t.match(all[0], { seq: 1, prev: '0'.repeat(64), hash: /^[0-9a-f]{64}$/, kind: 'unit', unit: { type: 'statement' } });

  t.same(
    readEvents(dir, { sinceSeq: 28 }).map((e) => e.seq),
    [29, 30, 31],
    'sinceSeq is exclusive',
  );
  t.equal(readEvents(dir, { limit: 5 }).length, 5);
  t.equal(readEvents(dir, { limit: 1e9 }).length, 31, 'limit is capped, not an error');
  t.ok(readEvents(dir, { connector: 'payments-db' }).every((e) => e.connector === 'payments-db'));
  t.equal(readEvents(dir, { connector: 'payments-db' }).length, 15);
  t.same(
    readEvents(dir, { session: 'sess-2' }).map((e) => e.seq),
    [3, 8, 13, 18, 23, 28],
  );
  t.equal(readEvents(dir, { subject: 'svc:1' }).length, 10);
  t.same(
    readEvents(dir, { kind: 'auth.failure' }).map((e) => e.seq),
    [31],
  );
  // event(i) has time 2025-01-01T00:00:00.{i}Z
  const window = readEvents(dir, { since: '2025-01-01T00:00:00.010Z', until: '2025-01-01T01:00:00.015+01:00' });
  t.same(
    window.map((e) => e.seq),
    [11, 12, 13, 14, 15],
    'since inclusive, until exclusive, offsets honoured',
  );
  t.throws(() => readEvents(dir, { since: 'yesterday' }), /RFC 3339/);

  const streamed = [...iterateEvents(dir, { connector: 'billing-api' })];
  t.equal(streamed.length, 16);
  const it = iterateEvents(dir, {});
  const first = it.next();
  t.equal(first.done ? undefined : first.value.seq, 1);
  it.return?.(undefined);
  t.ok(verifyLog(dir).ok, 'an abandoned iterator leaves nothing locked');
});

t.test('readers see committed events while the writer runs', async (t) => {
  const dir = tempDir(t);
  const log = await open(t, dir);
  await appendMany(log, 5);
  t.equal(readEvents(dir, {}).length, 5);
  t.ok(readLatestCheckpoint(dir));
  t.equal(readVerifierKey(dir), log.verifierKey);
  const r = verifyLog(dir);
  t.ok(r.ok, r.reason ?? 'verifies');
  t.equal(r.size, 5);
});

t.test('missing log', async (t) => {
  const dir = tempDir(t);
  t.equal(readLatestCheckpoint(dir), null);
  t.equal(readVerifierKey(dir), null);
  t.throws(() => readEvents(dir, {}), /no audit log/);
  t.notOk(verifyLog(dir).ok);
});
