/**
 * The MySQL packet framer against mysql2's PacketParser on the same bytes: 200,000 text rows
 * of 4 columns in 64 KiB chunks. Both hand out views (no copy per packet); mysql2's parser
 * reuses one mutable Packet object per callback, so a relay that keeps a packet past the
 * callback (waiting on the audit, a paused socket) must clone it — measured both ways.
 * Run: node test/dist/bench/mysql/framer-bench.js
 */
import { createRequire } from 'node:module';
import { encode, PacketFramer } from '@gatehouse/connector-mysql';

const require = createRequire(import.meta.url);
// Not exported by the package: loaded by path, as a relay using it would have to.
const PacketParser = require(require.resolve('mysql2').replace(/index\.js$/, 'lib/packet_parser.js')) as new (cb: (p: { clone(): unknown }) => void) => {
  execute(b: Buffer): void;
};

const lenenc = (s: string) => Buffer.concat([Buffer.from([s.length]), Buffer.from(s)]);
const row = Buffer.concat([lenenc('12345'), lenenc('Ada Lovelace'), lenenc('4111111111111111'), lenenc('contact ada@example.com please')]);
const N = 200_000;
const stream = Buffer.concat(Array.from({ length: N }, (_v, i) => encode(row, i & 0xff)));
const chunks: Buffer[] = [];
for (let i = 0; i < stream.length; i += 65536) chunks.push(stream.subarray(i, i + 65536));

function time(name: string, f: () => number): void {
  f();
  const t0 = process.hrtime.bigint();
  let n = 0;
  for (let r = 0; r < 5; r++) n += f();
  const ms = Number(process.hrtime.bigint() - t0) / 1e6 / 5;
  console.log(`${name.padEnd(36)} ${ms.toFixed(1).padStart(7)} ms per ${N / 1000}k rows  ${(((N / ms) * 1000) / 1e6).toFixed(1)} M rows/s  (${n / 5} packets)`);
}

time('PacketFramer (views)', () => {
  const f = new PacketFramer(1 << 30);
  let n = 0;
  for (const c of chunks) {
    f.push(c);
    while (f.next()) n++;
  }
  return n;
});
time('mysql2 PacketParser (reused object)', () => {
  let n = 0;
  const p = new PacketParser(() => n++);
  for (const c of chunks) p.execute(c);
  return n;
});
time('mysql2 PacketParser + clone()', () => {
  let n = 0;
  const p = new PacketParser((pk) => {
    pk.clone();
    n++;
  });
  for (const c of chunks) p.execute(c);
  return n;
});
