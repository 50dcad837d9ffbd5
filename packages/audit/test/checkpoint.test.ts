import t from 'tap';
import { createHash, createPublicKey, verify } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { readLatestCheckpoint, readVerifierKey } from '../src/index.js';
import { appendMany, closedLog, open, tempDir, waitFor } from './helpers.js';

const sha = (...parts: Array<Buffer | string>) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};

/** An independent C2SP signed-note + checkpoint verifier, written from the specs with node:crypto only. */
function handVerify(note: string, verifierKey: string) {
  const [name, idHex] = verifierKey.split('+');
  const keyB64 = verifierKey.slice(name.length + idHex.length + 2);
  const raw = Buffer.from(keyB64, 'base64');
  if (raw[0] !== 0x01 || raw.length !== 33) throw new Error('not ed25519');
  const pub = raw.subarray(1);
  const id = sha(name, '\n', Buffer.from([0x01]), pub).subarray(0, 4);
  if (id.toString('hex') !== idHex) throw new Error('key id');
  const split = note.indexOf('\n\n');
  const body = note.slice(0, split + 1);
  const m = /^\u2014 (\S+) (\S+)\n$/u.exec(note.slice(split + 2));
  if (!m || m[1] !== name) throw new Error('signature line');
  const sig = Buffer.from(m[2], 'base64');
  if (!sig.subarray(0, 4).equals(id)) throw new Error('signature key id');
  const spki = Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), pub]);
  const good = verify(null, Buffer.from(body, 'utf8'), createPublicKey({ key: spki, format: 'der', type: 'spki' }), sig.subarray(4));
  const [origin, size, root, ...ext] = body.slice(0, -1).split('\n');
  return { good, origin, size: Number(size), root, ext };
}

function naiveRoot(leaves: Buffer[]): Buffer {
  if (leaves.length === 0) return sha('');
  if (leaves.length === 1) return leaves[0];
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return sha(Buffer.from([1]), naiveRoot(leaves.slice(0, k)), naiveRoot(leaves.slice(k)));
}

t.test('checkpoints are C2SP signed notes over the RFC 6962 root of the stored events', async (t) => {
  const { dir, log } = await closedLog(t, 37, { origin: 'gatehouse.test/cp' });

  const vkey = readVerifierKey(dir)!;
  t.equal(vkey, log.verifierKey, 'audit-key.pub holds the verifier key');
  t.match(vkey, /^gatehouse\.test\/cp\+[0-9a-f]{8}\+[A-Za-z0-9+/]+=*$/);
  t.equal(statSync(join(dir, 'audit-key')).mode & 0o777, 0o600, 'private key file is 0600');
  t.notMatch(readFileSync(join(dir, 'audit-key.pub'), 'utf8'), /PRIVATE/);

  const note = readLatestCheckpoint(dir)!;
  const cp = handVerify(note, vkey);
  t.ok(cp.good, 'signature verifies with an independent verifier');
  t.equal(cp.origin, 'gatehouse.test/cp');
  t.equal(cp.size, 37);
  t.match(cp.ext[0], /^time \d{4}-\d\d-\d\dT/);

  const db = new Database(join(dir, 'audit.db'), { readonly: true });
  const bodies = (db.prepare('SELECT body FROM events ORDER BY seq').all() as Array<{ body: string }>).map((r) => r.body);
  db.close();
  const leaves = bodies.map((b) => sha(Buffer.from([0]), b));
  t.equal(cp.root, naiveRoot(leaves).toString('base64'), 'signed root = naive RFC 6962 root of the canonical bodies');

  const forged = note.replace('\n37\n', '\n36\n');
  t.notOk(handVerify(forged, vkey).good, 'an edited body does not verify');
});

t.test('an idle log keeps signing fresh checkpoints', async (t) => {
  const dir = tempDir(t);
  const log = await open(t, dir, { checkpointIntervalSec: 1 });
  await appendMany(log, 3);
  const first = await log.latestCheckpoint();
  const db = new Database(join(dir, 'audit.db'), { readonly: true });
  t.teardown(() => db.close());
  const count = () => (db.prepare('SELECT count(*) AS n FROM checkpoints WHERE size = 3').get() as { n: number }).n;
  t.ok(await waitFor(() => count() >= 2), 'at least two signed checkpoints at the same size');
  const notes = (db.prepare('SELECT note FROM checkpoints WHERE size = 3').all() as Array<{ note: string }>).map((r) => r.note);
  const times = new Set(notes.map((n) => handVerify(n, log.verifierKey).ext[0]));
  t.equal(times.size, notes.length, 'each idle checkpoint carries its own signing time');
  for (const n of notes) t.ok(handVerify(n, log.verifierKey).good);
  t.ok(await waitFor(() => readLatestCheckpoint(dir) !== null));
  t.not(await log.latestCheckpoint(), null);
  t.ok(first);
});

t.test('origin and key name are fixed once the log exists', async (t) => {
  const dir = tempDir(t);
  const log = await open(t, dir, { origin: 'one' });
  await log.close();
  await t.rejects(open(t, dir, { origin: 'two' }), /origin/);
  await t.rejects(open(t, dir, { origin: 'one', keyName: 'other' }), /key_name/);
  const again = await open(t, dir, { origin: 'one' });
  t.equal(again.verifierKey, log.verifierKey, 'the same key is reused on restart');
});
