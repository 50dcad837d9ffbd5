/** LogReader edge cases on a real log: a checkpoint row committed after the reader passed its size, and a forged one. */
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { DURABLE_FILE, parseVerifierKey, readDurableSeq, readVerifierKey } from '@gatehouse/audit';
import { INITIAL, isFault } from '../src/chain.js';
import { LogReader, type ReadBatch } from '../src/reader.js';
import { append, openLog, tempDir } from './helpers.js';

type Test = Parameters<Parameters<typeof t.test>[0]>[0];

/** Two writer sessions of 50 events: checkpoints at 0, 50 (close and reopen) and 100. */
async function twoSessions(t: Test, dir: string) {
  for (let i = 0; i < 2; i++) {
    const log = await openLog(t, dir);
    await append(log, 50, i * 50);
    await log.close();
  }
}

function reader(dir: string): LogReader {
  const text = readVerifierKey(dir)!;
  const key = parseVerifierKey(text);
  if (!key.ok) throw new Error(key.error.message);
  return new LogReader(dir, key.value, text, INITIAL, { hashes: new Map(), roots: new Map() }, null);
}

t.test('a checkpoint whose row appears after the reader passed its size is verified against a snapshot', async (t) => {
  const dir = tempDir(t);
  await twoSessions(t, dir);
  const db = new Database(join(dir, 'audit.db'));
  const late = db.prepare('SELECT size, root, time, note FROM checkpoints WHERE size = 50').all() as Array<{ size: number; root: Buffer; time: string; note: string }>;
  t.ok(late.length >= 1, 'the log has a checkpoint at 50');
  db.prepare('DELETE FROM checkpoints WHERE size = 50').run();
  const r = reader(dir);
  let b = r.poll(20) as ReadBatch; // 1..20: snapshot at 20 kept
  t.equal(b.end.size, 20);
  b = r.poll(1000) as ReadBatch;
  t.equal(b.end.size, 100);
  t.same(
    b.checkpoints.map((c) => c.size),
    [100],
  );
  const ins = db.prepare('INSERT INTO checkpoints (size, root, time, note) VALUES (?,?,?,?)');
  for (const c of late) ins.run(c.size, c.root, c.time, c.note);
  b = r.poll(1000) as ReadBatch;
  t.notOk(isFault(b));
  t.same(
    b.checkpoints.map((c) => c.size),
    late.map(() => 50),
    'the late checkpoint is verified and shipped',
  );
  // A forged late row (a root from elsewhere) is a fault.
  ins.run(60, late[0].root, late[0].time, late[0].note.replace('\n50\n', '\n60\n'));
  const f = r.poll(1000);
  t.ok(f && isFault(f), 'forged late checkpoint refused');
  r.close();
  db.close();
});

t.test('what was shipped must still be there: a cursor hash that differs is a rollback', async (t) => {
  const dir = tempDir(t);
  await twoSessions(t, dir);
  const text = readVerifierKey(dir)!;
  const key = parseVerifierKey(text);
  if (!key.ok) throw new Error(key.error.message);
  const r = new LogReader(dir, key.value, text, INITIAL, { hashes: new Map([[30, { hash: 'ab'.repeat(32), sink: 'nats' }]]), roots: new Map() }, null);
  const f = r.poll(1000);
  t.match(f, { code: 'agent.rollback', seq: 30 });
  r.close();
  const r2 = new LogReader(dir, key.value, text, INITIAL, { hashes: new Map(), roots: new Map([[50, { root: 'AAAA', sink: 'postgres' }]]) }, null);
  t.match(r2.poll(1000), { code: 'agent.rollback', seq: 1 }, 'a shipped root that differs');
  r2.close();
  const r3 = new LogReader(dir, key.value, text, INITIAL, { hashes: new Map([[500, { hash: 'ab'.repeat(32), sink: 'file' }]]), roots: new Map() }, null);
  t.match(r3.poll(1000), { code: 'agent.rollback', seq: 101 }, 'shorter than what was shipped');
  r3.close();
});

t.test('nothing past the durable watermark is read: events a power cut could take back never reach a sink', async (t) => {
  const dir = tempDir(t);
  await twoSessions(t, dir);
  t.equal(readDurableSeq(dir), 100, 'the writer marked all 100 durable when it closed');
  // As if the last 30 were committed but their fsync had not completed yet.
  writeFileSync(join(dir, DURABLE_FILE), `${String(70).padStart(20, '0')}\n`);
  const r = reader(dir);
  const b = r.poll(1000) as ReadBatch;
  t.equal(b.end.size, 70, 'read up to the watermark');
  t.equal(b.events.at(-1)?.seq, 70);
  t.equal(r.poll(1000), null, 'and no further while it stays there');
  writeFileSync(join(dir, DURABLE_FILE), `${String(100).padStart(20, '0')}\n`);
  const rest = r.poll(1000) as ReadBatch;
  t.equal(rest.events[0]?.seq, 71, 'continues once the writer marks more durable');
  t.equal(rest.end.size, 100);
  r.close();
});
