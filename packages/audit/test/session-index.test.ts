/**
 * The session index is built in bulk (store.ts, decision 0107): a query by session must see
 * the indexed part and the unindexed tail alike, verifyLog must catch an edited index, and a
 * log written with the per-event index of schema 1 must migrate without breaking its chain.
 */
import t from 'tap';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Frontier, openReadOnly, readEvents, readLatestCheckpoint, readMeta, verifyLog } from '../src/index.js';
import { appendMany, event, open, tamper, tempDir, waitFor } from './helpers.js';

function meta(dir: string, key: string): string | undefined {
  const db = openReadOnly(dir);
  try {
    return db ? readMeta(db, key)?.toString('utf8') : undefined;
  } finally {
    db?.close();
  }
}

/** event(i) is in session `sess-${i % 5}`: these are the seqs (i + 1) of one session. */
const seqsOf = (session: number, n: number) => Array.from({ length: n }, (_, i) => i + 1).filter((seq) => (seq - 1) % 5 === session);

t.test('a query by session sees the indexed events and the tail after them', async (t) => {
  const dir = tempDir(t);
  const log = await open(t, dir);
  await appendMany(log, 30);
  t.ok(await waitFor(() => meta(dir, 'session_indexed') === '30'), 'the writer indexes the first 30 events in a pass of its own');
  await appendMany(log, 12, 30);
  // The next pass is up to a second away: these 12 are in the tail.
  const seqs = readEvents(dir, { session: 'sess-2' }).map((e) => e.seq);
  t.same(seqs, seqsOf(2, 42), 'indexed and tail events, in order, each once');
  t.same(
    readEvents(dir, { session: 'sess-2', sinceSeq: 20, connector: 'payments-db' }).map((e) => e.seq),
    seqsOf(2, 42).filter((s) => s > 20 && (s - 1) % 2 === 1),
    'combined with other filters',
  );
  t.same(readEvents(dir, { session: 'nobody' }), [], 'an unknown session has no events');
  await log.close();
  t.equal(meta(dir, 'session_indexed'), '42', 'a closed log is fully indexed');
  t.same(
    readEvents(dir, { session: 'sess-2' }).map((e) => e.seq),
    seqsOf(2, 42),
  );
  t.ok(verifyLog(dir).ok);
});

t.test('verifyLog refuses an edited session index', async (t) => {
  const cases: Array<[string, (db: Database.Database) => void, RegExp]> = [
    ['an entry removed', (db) => db.prepare('DELETE FROM session_events WHERE seq = 7').run(), /lists 19 events but claims to cover 20/],
    ['an entry moved to another session', (db) => db.prepare("UPDATE session_events SET session = 'sess-4' WHERE seq = 7").run(), /entry for event 7 names another session/],
    ['an entry for no event', (db) => db.prepare("INSERT INTO session_events (session, seq) VALUES ('sess-1', 99)").run(), /entry for event 99/],
    [
      'coverage claimed beyond the log',
      (db) => db.prepare("UPDATE meta SET value = CAST('25' AS BLOB) WHERE key = 'session_indexed'").run(),
      /claims to cover 25 events but the log has 20/,
    ],
    [
      'coverage claimed for removed entries',
      (db) => {
        db.prepare('DELETE FROM session_events WHERE seq > 10').run();
      },
      /lists 10 events but claims to cover 20/,
    ],
  ];
  for (const [name, change, reason] of cases) {
    const dir = tempDir(t);
    const log = await open(t, dir);
    await appendMany(log, 20);
    await log.close();
    t.ok(verifyLog(dir).ok, `${name}: verifies before the edit`);
    tamper(dir, change);
    const r = verifyLog(dir);
    t.notOk(r.ok, `${name}: refused`);
    t.match(r.reason, reason, name);
  }
  // Honest partial coverage is not an error: the tail is scanned.
  const dir = tempDir(t);
  const log = await open(t, dir);
  await appendMany(log, 20);
  await log.close();
  tamper(dir, (db) => {
    db.prepare('DELETE FROM session_events WHERE seq > 10').run();
    db.prepare("UPDATE meta SET value = CAST('10' AS BLOB) WHERE key = 'session_indexed'").run();
  });
  t.ok(verifyLog(dir).ok, 'an index that covers less than the log (and says so) verifies');
  t.same(
    readEvents(dir, { session: 'sess-3' }).map((e) => e.seq),
    seqsOf(3, 20),
    'and the query still finds every event',
  );
});

t.test('a schema 1 log (per-event session index) migrates: indexed in chunks, chain and checkpoints intact', async (t) => {
  const dir = tempDir(t);
  const n = 25_000; // more than one catch-up chunk (20,000)
  const first = await open(t, dir, { durability: 'batched' });
  for (let i = 0; i < n; i++) first.appendDetached(event(i));
  await first.close();
  const signed = readLatestCheckpoint(dir);
  // Turn it into what schema 1 wrote.
  tamper(dir, (db) => {
    db.exec('DROP TABLE session_events');
    db.exec("DELETE FROM meta WHERE key = 'session_indexed'");
    db.exec('CREATE INDEX events_session ON events(session)');
    db.prepare("UPDATE meta SET value = CAST('1' AS BLOB) WHERE key = 'schema'").run();
  });
  t.same(
    readEvents(dir, { session: 'sess-1', limit: 3 }).map((e) => e.seq),
    [2, 7, 12],
    'a reader of a schema 1 log uses its column index',
  );
  t.ok(verifyLog(dir).ok, 'the schema 1 log verifies');

  const log = await open(t, dir);
  t.equal(meta(dir, 'schema'), '2', 'migrated on open');
  t.ok(await waitFor(() => meta(dir, 'session_indexed') === String(n)), 'every old event indexed by the catch-up');
  const db = new Database(join(dir, 'audit.db'), { readonly: true });
  const perEvent = db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 'events_session'").get() as { n: number };
  t.equal(perEvent.n, 0, 'the per-event index is gone');
  db.close();
  await appendMany(log, 5, n);
  await log.close();
  const all = readEvents(dir, { session: 'sess-4', sinceSeq: n - 10, limit: 10 }).map((e) => e.seq);
  t.same(
    all,
    seqsOf(4, n + 5).filter((s) => s > n - 10),
    'old and new events by session',
  );
  const r = verifyLog(dir, { checkpoint: signed ?? undefined });
  t.ok(r.ok, `verifies against the checkpoint signed before the migration: ${r.reason ?? ''}`);
  t.equal(r.size, n + 5);
});

t.test('the Merkle frontier is saved with checkpoints; a restart replays the leaves after it', async (t) => {
  const dir = tempDir(t);
  const log = await open(t, dir);
  await appendMany(log, 40);
  await log.close();
  // As if the writer had stopped right after a checkpoint at size 0: every leaf is replayed.
  tamper(dir, (db) => db.prepare("UPDATE meta SET value = ? WHERE key = 'frontier'").run(new Frontier().serialize()));
  const again = await open(t, dir);
  await appendMany(again, 10, 40);
  await again.close();
  const r = verifyLog(dir);
  t.ok(r.ok, `the checkpoints signed after the replay match the events: ${r.reason ?? ''}`);
  t.equal(r.size, 50);
  // Without any saved frontier, too.
  tamper(dir, (db) => db.prepare("DELETE FROM meta WHERE key = 'frontier'").run());
  const third = await open(t, dir);
  await appendMany(third, 3, 50);
  await third.close();
  t.ok(verifyLog(dir).ok);
});
