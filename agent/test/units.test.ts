/** The small pieces on their own: chain faults, cosignatures, redaction, back-off, the wait. */
import t from 'tap';
import { join } from 'node:path';
import { canonicalJson, hashEvent, ZERO_HASH } from '@gatehouse/audit';
import { ChainVerifier, isFault } from '../src/chain.js';
import { redactUrl } from '../src/log.js';
import { backoff } from '../src/retry.js';
import { Wake } from '../src/wake.js';
import { cosign, loadOrCreateWitness, parseWitnessKey, verifyCosignature } from '../src/witness.js';
import { tempDir } from './helpers.js';

function chain(n: number): Array<{ seq: number; body: string; hash: Buffer }> {
  const out = [];
  let prev = ZERO_HASH;
  for (let seq = 1; seq <= n; seq++) {
    const body = canonicalJson({ kind: 'unit', prev: prev.toString('hex'), seq, x: seq });
    const { hash } = hashEvent(prev, body);
    out.push({ seq, body, hash });
    prev = hash;
  }
  return out;
}

t.test('chain verifier faults', async (t) => {
  const evs = chain(5);
  const v = new ChainVerifier();
  for (const e of evs.slice(0, 3)) t.notOk(isFault(v.feed(e.seq, e.body, { hash: e.hash })));
  const resumed = new ChainVerifier(v.state());
  t.equal(resumed.size, 3);
  t.equal(resumed.root().toString('hex'), v.root().toString('hex'), 'state round-trips');
  t.match(v.feed(5, evs[4].body), { code: 'agent.gap', seq: 4 });
  t.match(v.feed(4, evs[4].body), { code: 'agent.gap', seq: 4 }, 'body says another seq');
  t.match(v.feed(4, evs[3].body, { hash: Buffer.alloc(32) }), { code: 'agent.bad_hash', seq: 4 });
  t.match(v.feed(4, evs[3].body.replace('"x":4', '"x":5'), { hash: evs[3].hash }), { code: 'agent.bad_hash', seq: 4 }, 'an edited body no longer matches its hash');
  const spaced = evs[3].body.replace(',"seq"', ', "seq"');
  t.match(v.feed(4, spaced), { code: 'agent.not_canonical', seq: 4 });
  t.match(v.feed(4, '{"seq":4,"prev":"00"}'), { code: 'agent.bad_hash', seq: 3 }, 'a broken link names the earlier event');
  t.match(v.feed(4, 'not json'), { code: 'agent.bad_hash' });
  t.equal(v.feed(4, evs[3].body, { hash: evs[3].hash }), evs[3].hash.toString('hex'), 'still usable after refusals');
});

t.test('witness cosignatures (tlog-cosignature/v1)', async (t) => {
  const dir = tempDir(t);
  const w = loadOrCreateWitness(join(dir, 'w.pem'), 'witness.example/a');
  const again = loadOrCreateWitness(join(dir, 'w.pem'), 'witness.example/a');
  t.equal(again.verifierKey, w.verifierKey, 'the key is kept');
  const pub = parseWitnessKey(w.verifierKey)!;
  t.ok(pub);
  const note = 'gatehouse\n3\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\ntime 2026-01-01T00:00:00Z\n\n\u2014 gatehouse abcd\n';
  const line = cosign(w, note, 1_700_000_000_000);
  t.equal(verifyCosignature(pub, note, line), 1_700_000_000);
  t.match(verifyCosignature(pub, note.replace('\n3\n', '\n4\n'), line), /does not verify/);
  const other = parseWitnessKey(loadOrCreateWitness(join(dir, 'o.pem'), 'witness.example/a').verifierKey)!;
  t.match(verifyCosignature(other, note, line), /key id/);
  t.equal(parseWitnessKey('gatehouse+00000000+AQ=='), null);
  t.equal(parseWitnessKey(w.verifierKey.replace(/\+[0-9a-f]{8}\+/, '+00000000+')), null, 'id must match the key');
});

t.test('redaction, back-off, bounded waits', async (t) => {
  t.equal(redactUrl('postgres://agent:s3cret@db:5432/central?sslpassword=x'), 'postgres://agent:***@db:5432/central?***');
  t.equal(redactUrl('::'), '(unparsable url)');
  for (let n = 0; n < 40; n++) {
    const d = backoff(n, 200, 30_000);
    t.ok(d >= Math.min(30_000, 200 * 2 ** n) / 2 - 1 && d <= 30_000, `attempt ${n}: ${d} ms`);
  }
  const w = new Wake();
  const ac = new AbortController();
  const t0 = Date.now();
  const p = w.wait(10_000, ac.signal);
  w.notify();
  await p;
  t.ok(Date.now() - t0 < 1000, 'notify ends a wait');
  const q = w.wait(10_000, ac.signal);
  ac.abort();
  await q;
  t.ok(Date.now() - t0 < 1000, 'abort ends a wait');
  await w.wait(10, new AbortController().signal);
  t.pass('a timeout ends a wait');
});
