/** The writer's EventHasher must give exactly hashEvent's chain and leaf hashes. */
import { createHash } from 'node:crypto';
import t from 'tap';
import { EventHasher, hashEvent, ZERO_HASH } from '../src/hashing.js';

t.test('EventHasher agrees with hashEvent and with the definition', async (t) => {
  const h = new EventHasher();
  const bodies = [
    '',
    '{"a":1}',
    '{"text":"é € 😀 \ud800 lone surrogate","n":1e21}',
    'x'.repeat(70_000), // larger than the kept scratch buffer
    '€'.repeat(30_000), // 3 UTF-8 bytes per code unit
    '{"after":"a large one, the scratch buffer is reused"}',
  ];
  let prev = ZERO_HASH;
  for (const body of bodies) {
    const got = h.hash(prev, body);
    const want = hashEvent(prev, body);
    t.ok(got.hash.equals(want.hash), `chain hash, ${body.length} chars`);
    t.ok(got.leaf.equals(want.leaf), `leaf hash, ${body.length} chars`);
    const def = createHash('sha256').update(prev).update(body, 'utf8').digest();
    t.ok(got.hash.equals(def), 'chain hash = SHA-256(prev || utf8(body))');
    const leafDef = createHash('sha256')
      .update(Buffer.from([0]))
      .update(body, 'utf8')
      .digest();
    t.ok(got.leaf.equals(leafDef), 'leaf hash = SHA-256(0x00 || utf8(body))');
    prev = got.hash;
  }
});
