import t from 'tap';
import { proveInclusion, readVerifierKey, verifyProofBundle, type ProofBundle } from '../src/index.js';
import { closedLog, event, open, tempDir } from './helpers.js';

t.test('inclusion proofs verify for every event and fail when anything is changed', async (t) => {
  const { dir } = await closedLog(t, 21);
  const key = readVerifierKey(dir)!;

  for (let seq = 1; seq <= 21; seq++) {
    const b = JSON.parse(JSON.stringify(proveInclusion(dir, seq))) as ProofBundle; // survives JSON
    const r = verifyProofBundle(b, key);
    if (!r.ok || r.value.seq !== seq || r.value.size !== 21) t.fail(`proof for ${seq}: ${JSON.stringify(r)}`);
  }
  t.pass('all 21 proofs verify');

  const b = proveInclusion(dir, 8);
  const clone = () => JSON.parse(JSON.stringify(b)) as ProofBundle;
  const expectBad = (x: ProofBundle, why: RegExp, msg: string) => {
    const r = verifyProofBundle(x, key);
    t.notOk(r.ok, msg);
    if (!r.ok) t.match(r.error.message, why, msg);
  };

  let x = clone();
  x.event.unit!.text = 'DROP TABLE accounts';
  expectBad(x, /does not match the hashed bytes/, 'edited event');

  x = clone();
  x.canonical = x.canonical.replace('"allow"', '"deny"');
  x.event.decision!.action = 'deny';
  expectBad(x, /hash does not match/, 'edited event and canonical bytes');

  x = clone();
  x.path[1] = Buffer.alloc(32).toString('base64');
  expectBad(x, /does not lead to the signed root/, 'edited path');

  x = clone();
  x.path.pop();
  expectBad(x, /wrong length|does not lead/, 'short path');

  x = clone();
  x.checkpoint = x.checkpoint.replace('\n21\n', '\n22\n');
  expectBad(x, /signature/, 'edited checkpoint');

  const other = tempDir(t);
  const log2 = await open(t, other);
  await log2.close();
  const r = verifyProofBundle(clone(), readVerifierKey(other)!);
  t.notOk(r.ok, 'another log key does not verify it');
});

t.test('an event newer than the latest checkpoint cannot be proven yet', async (t) => {
  const dir = tempDir(t);
  const log = await open(t, dir);
  await log.append(event(1));
  t.throws(() => proveInclusion(dir, 1), /not covered by a signed checkpoint yet/);
  t.throws(() => proveInclusion(dir, 0), /positive integer/);
  await log.close();
  t.ok(verifyProofBundle(proveInclusion(dir, 1), log.verifierKey).ok);
  t.throws(() => proveInclusion(dir, 2), /not covered/);
});
