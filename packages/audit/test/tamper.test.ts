/**
 * Every tamper case, done to the SQLite file directly through a separate connection,
 * and the exact sequence number and reason verifyLog must name.
 */
import t from 'tap';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { canonicalJson, readLatestCheckpoint, verifyLog } from '../src/index.js';
import { chainHash, leafHash } from '../src/hashing.js';
import { appendMany, closedLog, open, tamper } from './helpers.js';

const N = 20;

interface TestLike {
  teardown(fn: () => unknown): void;
  ok(v: unknown, m: string): unknown;
  equal(a: unknown, b: unknown): unknown;
}

/** A closed log of N events with a checkpoint at size 10 and one at size N. */
async function build(t: TestLike): Promise<{ dir: string; cp10: string; cpN: string }> {
  const { dir } = await closedLog(t, 10); // strict: all 10 committed before close
  const cp10 = readLatestCheckpoint(dir)!;
  const log2 = await open(t, dir);
  await appendMany(log2, N - 10, 10);
  await log2.close();
  const cpN = readLatestCheckpoint(dir)!;
  const report = verifyLog(dir);
  t.ok(report.ok, 'untampered log verifies');
  t.equal(report.size, N);
  return { dir, cp10, cpN };
}

/** The writer's signing key as it lies on disk next to the log (what a forger with file access has). */
async function writerKey(dir: string) {
  const { createPrivateKey } = await import('node:crypto');
  const key = createPrivateKey(readFileSync(join(dir, 'audit-key')));
  const vk = readFileSync(join(dir, 'audit-key.pub'), 'utf8').trim();
  return { key, pub: Buffer.from(vk.slice(-44), 'base64').subarray(1) };
}

t.test('untampered log with a trusted checkpoint verifies', async (t) => {
  const { dir, cp10, cpN } = await build(t);
  t.ok(verifyLog(dir, { checkpoint: cp10 }).ok);
  const r = verifyLog(dir, { checkpoint: cpN, verifierKey: readFileSync(join(dir, 'audit-key.pub'), 'utf8') });
  t.ok(r.ok);
  t.ok(r.checkpoints >= 4, 'stored checkpoints were checked');
});

/** Edits of events: the first bad sequence number and the reason verifyLog must name. */
const EVENT_EDITS: { name: string; edit: (db: Database.Database) => void; firstBad: number; reason: RegExp; goodPrefix?: number }[] = [
  {
    name: 'an edited field in the hashed body',
    edit: (db) => db.prepare('UPDATE events SET body = replace(body, \'"action":"allow"\', \'"action":"deny"\') WHERE seq = 7').run(),
    firstBad: 7,
    reason: /event 7: hash does not match/,
  },
  {
    name: 'an edited indexed column (the body left alone)',
    edit: (db) => db.prepare("UPDATE events SET subject = 'svc:innocent' WHERE seq = 12").run(),
    firstBad: 12,
    reason: /column subject differs/,
  },
  {
    name: 'an edited event whose hash and leaf were recomputed',
    edit: (db) => {
      const row = db.prepare('SELECT body, prev FROM events WHERE seq = 4').get() as { body: string; prev: Buffer };
      const body = JSON.parse(row.body) as { unit: { text: string } };
      body.unit.text = 'SELECT 1';
      const text = canonicalJson(body);
      db.prepare('UPDATE events SET body = ?, hash = ?, leaf = ? WHERE seq = 4').run(text, chainHash(row.prev, text), leafHash(text));
    },
    firstBad: 4,
    reason: /chain broken between events 4 and 5/,
  },
  { name: 'an edited leaf hash column', edit: (db) => db.prepare('UPDATE events SET leaf = zeroblob(32) WHERE seq = 15').run(), firstBad: 15, reason: /leaf hash/ },
  { name: 'a deleted event in the middle', edit: (db) => db.prepare('DELETE FROM events WHERE seq = 9').run(), firstBad: 9, reason: /event 9 is missing/, goodPrefix: 8 },
  { name: 'a deleted last event is caught by the stored checkpoint', edit: (db) => db.prepare('DELETE FROM events WHERE seq = ?').run(N), firstBad: N, reason: /log truncated/ },
  {
    name: 'two rows swapped',
    edit: (db) =>
      db.transaction(() => {
        db.prepare('UPDATE events SET seq = -1 WHERE seq = 5').run();
        db.prepare('UPDATE events SET seq = 5 WHERE seq = 6').run();
        db.prepare('UPDATE events SET seq = 6 WHERE seq = -1').run();
      })(),
    firstBad: 5,
    reason: /reordered/,
  },
];

for (const c of EVENT_EDITS) {
  t.test(c.name, async (t) => {
    const { dir } = await build(t);
    tamper(dir, c.edit);
    const r = verifyLog(dir);
    t.notOk(r.ok);
    t.equal(r.firstBadSeq, c.firstBad);
    t.match(r.reason, c.reason);
    if (c.goodPrefix !== undefined) t.equal(r.size, c.goodPrefix, 'the report covers the good prefix');
  });
}

t.test('a stored checkpoint with a bad signature', async (t) => {
  const { dir } = await build(t);
  let cp = { id: 0, note: '' };
  tamper(dir, (db) => {
    cp = db.prepare('SELECT id, note FROM checkpoints WHERE size = ? ORDER BY id LIMIT 1').get(N) as { id: number; note: string };
    const [body, sig] = cp.note.split('\n\n');
    const raw = Buffer.from(sig.trim().split(' ')[2], 'base64');
    raw[10] ^= 1;
    db.prepare('UPDATE checkpoints SET note = ? WHERE id = ?').run(`${body}\n\n\u2014 ${sig.trim().split(' ')[1]} ${raw.toString('base64')}\n`, cp.id);
  });
  const r = verifyLog(dir);
  t.notOk(r.ok);
  t.equal(r.firstBadSeq, 11, 'events after the last good checkpoint (size 10) are not vouched for');
  t.match(r.reason, new RegExp(`checkpoint ${cp.id} at size ${N}: checkpoint signature does not verify`));
});

t.test('a stored checkpoint signed over the wrong root', async (t) => {
  const { dir } = await build(t);
  // Re-sign is impossible without the key, so forge with the key the writer left on disk:
  // the check under test is the root comparison, not the signature.
  const { signNote, checkpointBody } = await import('../src/note.js');
  const { key, pub } = await writerKey(dir);
  const note = signNote(checkpointBody('gatehouse.test/audit', 10, Buffer.alloc(32, 7), new Date().toISOString()), 'gatehouse.test/audit', key, pub);
  tamper(dir, (db) => db.prepare('INSERT INTO checkpoints (size, root, time, note) VALUES (10, zeroblob(32), ?, ?)').run(new Date().toISOString(), note));
  const r = verifyLog(dir);
  t.notOk(r.ok);
  t.equal(r.firstBadSeq, 1, 'nothing before size 10 was vouched for by an earlier checkpoint');
  t.match(r.reason, /at size 10: signed root does not match/);
});

t.test('truncation below a trusted checkpoint (stored ones deleted too)', async (t) => {
  const { dir, cpN } = await build(t);
  tamper(dir, (db) => {
    db.prepare('DELETE FROM events WHERE seq > 14').run();
    db.prepare('DELETE FROM checkpoints WHERE size > 14').run();
    // The derived session index, cut to match (left alone, verifyLog names the cut: below).
    db.prepare('DELETE FROM session_events WHERE seq > 14').run();
    db.prepare("UPDATE meta SET value = CAST('14' AS BLOB) WHERE key = 'session_indexed'").run();
  });
  t.ok(verifyLog(dir).ok, 'without the trusted checkpoint a clean cut is undetectable');
  const r = verifyLog(dir, { checkpoint: cpN });
  t.notOk(r.ok);
  t.equal(r.firstBadSeq, 15);
  t.match(r.reason, /log truncated: the trusted checkpoint covers 20 events but the log has 14/);
});

t.test('a cut that leaves the session index behind is caught without a trusted checkpoint', async (t) => {
  const { dir } = await build(t);
  tamper(dir, (db) => {
    db.prepare('DELETE FROM events WHERE seq > 14').run();
    db.prepare('DELETE FROM checkpoints WHERE size > 14').run();
  });
  const r = verifyLog(dir);
  t.notOk(r.ok);
  t.match(r.reason, /session index claims to cover 20 events but the log has 14/);
});

t.test('a rewritten log (re-chained and re-signed) against a trusted checkpoint', async (t) => {
  const { dir, cp10 } = await build(t);
  // Rewrite event 3 and re-chain everything after it, re-build checkpoints with the key
  // on disk: an insider with full access. Only a checkpoint kept elsewhere can tell.
  const { signNote, checkpointBody } = await import('../src/note.js');
  const { Frontier } = await import('../src/merkle.js');
  const { key, pub } = await writerKey(dir);
  const db = new Database(join(dir, 'audit.db'));
  const rows = db.prepare('SELECT seq, body FROM events ORDER BY seq').all() as Array<{ seq: number; body: string }>;
  let prev: Buffer = Buffer.alloc(32);
  const f = new Frontier();
  const roots: Buffer[] = [f.root()];
  db.transaction(() => {
    for (const r of rows) {
      const body = JSON.parse(r.body) as Record<string, unknown>;
      if (r.seq === 3) body.decision = { action: 'allow', rule: 'rewritten' };
      body.prev = prev.toString('hex');
      const text = canonicalJson(body);
      const hash = chainHash(prev, text);
      const leaf = leafHash(text);
      db.prepare('UPDATE events SET body = ?, prev = ?, hash = ?, leaf = ? WHERE seq = ?').run(text, prev, hash, leaf, r.seq);
      f.append(leaf);
      roots.push(f.root());
      prev = hash;
    }
    for (const c of db.prepare('SELECT id, size FROM checkpoints').all() as Array<{ id: number; size: number }>) {
      const note = signNote(checkpointBody('gatehouse.test/audit', c.size, roots[c.size], new Date().toISOString()), 'gatehouse.test/audit', key, pub);
      db.prepare('UPDATE checkpoints SET note = ?, root = ? WHERE id = ?').run(note, roots[c.size], c.id);
    }
  })();
  db.close();
  t.ok(verifyLog(dir).ok, 'self-consistent after the rewrite');
  const r = verifyLog(dir, { checkpoint: cp10 });
  t.notOk(r.ok);
  t.equal(r.firstBadSeq, 1);
  t.match(r.reason, /rewritten or rolled back: its root at size 10 differs/);
});

t.test('a forged trusted checkpoint is refused', async (t) => {
  const { dir, cp10 } = await build(t);
  const r = verifyLog(dir, { checkpoint: cp10.replace('\n10\n', '\n11\n') });
  t.notOk(r.ok);
  t.match(r.reason, /trusted checkpoint: checkpoint signature does not verify/);
});

t.test('stored checkpoints verify only under the key the verifier trusts', async (t) => {
  const { dir } = await build(t);
  const trusted = readFileSync(join(dir, 'audit-key.pub'), 'utf8');
  const { generateKeyPairSync, createPublicKey } = await import('node:crypto');
  const { verifierKeyString } = await import('../src/note.js');
  const other = generateKeyPairSync('ed25519');
  const x = Buffer.from(createPublicKey(other.privateKey).export({ format: 'jwk' }).x as string, 'base64url');
  const r = verifyLog(dir, { verifierKey: verifierKeyString('gatehouse.test/audit', x) });
  t.notOk(r.ok, 'a different key does not verify the stored checkpoints');
  t.match(r.reason, /checkpoint 1 at size 0: no signature by key/);
  t.ok(verifyLog(dir, { verifierKey: trusted }).ok);
});
