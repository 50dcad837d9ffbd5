/**
 * The packet framer: packets whole in one chunk come out as views of it (no copy); packets
 * split across chunks, byte by byte, and 16 MiB continuation packets come out whole; an
 * oversized packet stops the stream. `encode` is its inverse.
 */
import t from 'tap';
import { encode, MAX_PACKET, PacketFramer, type Packet } from '../src/packet.js';

function drain(f: PacketFramer): Packet[] {
  const out: Packet[] = [];
  let p: Packet | null;
  while ((p = f.next())) out.push(p);
  return out;
}

t.test('packets whole in one chunk are views of it', async (t) => {
  const chunk = Buffer.concat([encode(Buffer.from([0x03, 0x41]), 0), encode(Buffer.from('hello'), 7), encode(Buffer.alloc(0), 8)]);
  const f = new PacketFramer(1024);
  f.push(chunk);
  const ps = drain(f);
  t.same(
    ps.map((p) => [p.seq, p.payload.toString('latin1'), p.parts]),
    [
      [0, '\x03A', 1],
      [7, 'hello', 1],
      [8, '', 1],
    ],
  );
  t.equal(ps[1].payload.buffer, chunk.buffer, 'no copy');
  t.equal(ps[1].raw?.buffer, chunk.buffer);
  t.equal(ps[1].raw?.length, 9);
  t.equal(f.buffered, 0);
});

t.test('a packet split byte by byte comes out once, whole', async (t) => {
  const bytes = Buffer.concat([encode(Buffer.from('abcdefgh'), 3), encode(Buffer.from('x'), 4)]);
  const f = new PacketFramer(1024);
  const out: Packet[] = [];
  for (const b of bytes) {
    f.push(Buffer.from([b]));
    out.push(...drain(f));
  }
  t.same(
    out.map((p) => [p.seq, p.payload.toString()]),
    [
      [3, 'abcdefgh'],
      [4, 'x'],
    ],
  );
});

t.test('payloads of 16 MiB - 1 and more continue in the next packets; encode splits them the same way', async (t) => {
  for (const len of [MAX_PACKET - 1, MAX_PACKET, MAX_PACKET + 5, 2 * MAX_PACKET]) {
    const payload = Buffer.alloc(len, 0x61);
    payload[len - 1] = 0x7a;
    const wire = encode(payload, 250);
    const parts = Math.floor(len / MAX_PACKET) + 1;
    t.equal(wire.length, len + 4 * parts, `${len}: ${parts} packets`);
    const f = new PacketFramer(64 * 1024 * 1024);
    // In uneven chunks.
    for (let i = 0; i < wire.length; i += 1_000_003) f.push(wire.subarray(i, i + 1_000_003));
    const [p, none] = [f.next(), f.next()];
    t.ok(p);
    t.equal(none, null);
    t.equal(p?.payload.length, len);
    t.equal(p?.payload[len - 1], 0x7a);
    t.equal(p?.seq, 250);
    t.equal(p?.parts, parts);
    if (parts > 1) t.equal(wire[MAX_PACKET + 4 + 3], 251, 'the continuation packet has the next sequence id');
  }
});

t.test('an oversized packet stops the stream with an error', async (t) => {
  const f = new PacketFramer(100);
  f.push(encode(Buffer.alloc(50), 0));
  f.push(encode(Buffer.alloc(101), 1));
  t.equal(f.next()?.payload.length, 50);
  t.equal(f.next(), null);
  t.same(f.error, { code: 'too_large', length: 101 });
  f.push(encode(Buffer.alloc(1), 2));
  t.equal(f.next(), null, 'nothing after the error');
  const g = new PacketFramer(100);
  g.push(Buffer.from([0xff, 0xff, 0xff, 0])); // a continuation header: too large before any payload arrives
  t.equal(g.next(), null);
  t.ok(g.error);
});

t.test('encode reuses a received packet and rewrites its sequence id', async (t) => {
  const f = new PacketFramer(1024);
  f.push(encode(Buffer.from('abc'), 9));
  const p = f.next() as Packet;
  const raw = p.raw;
  const out = encode(p.payload, 1, raw);
  t.equal(out, raw, 'the same bytes');
  t.equal(out[3], 1);
});
