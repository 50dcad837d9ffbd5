/**
 * Backend-direction framing cost: the connector's MessageFramer (views, no decoding) vs
 * pg-protocol's Parser (decodes every message into an object) over the same result stream:
 * 100,000 DataRows of 4 text columns in 64 KiB chunks, as a socket would deliver them.
 * Run: node test/dist/bench/postgres/framer-bench.js
 */
import { PassThrough } from 'node:stream';
import { parse } from 'pg-protocol';
import { MessageFramer } from '@gatehouse/connector-postgres';

function dataRow(values: string[]): Buffer {
  const parts = values.map((v) => Buffer.from(v));
  const size = 7 + parts.reduce((n, p) => n + 4 + p.length, 0);
  const b = Buffer.alloc(size);
  b[0] = 0x44;
  b.writeInt32BE(size - 1, 1);
  b.writeInt16BE(values.length, 5);
  let o = 7;
  for (const p of parts) {
    b.writeInt32BE(p.length, o);
    p.copy(b, o + 4);
    o += 4 + p.length;
  }
  return b;
}

const ROWS = 100_000;
const stream = Buffer.concat(Array.from({ length: ROWS }, (_, i) => dataRow([String(i), 'customer name ' + i, '4111111111111111', 'some free text note'])));
const chunks: Buffer[] = [];
for (let o = 0; o < stream.length; o += 65536) chunks.push(stream.subarray(o, o + 65536));

function lean(): number {
  const f = new MessageFramer(1 << 30);
  let n = 0;
  let bytes = 0;
  for (const c of chunks) {
    f.push(c);
    for (let m = f.next(); m; m = f.next()) {
      n++;
      bytes += m.bytes.length;
    }
  }
  if (bytes !== stream.length) throw new Error('lost bytes');
  return n;
}

async function pgProtocol(): Promise<number> {
  const s = new PassThrough();
  let n = 0;
  const done = parse(s, () => {
    n++;
  });
  for (const c of chunks) s.write(c);
  s.end();
  await done;
  return n;
}

async function time(name: string, fn: () => number | Promise<number>): Promise<{ name: string; msPerRun: number; rowsPerSec: number }> {
  for (let i = 0; i < 3; i++) await fn();
  const runs = 10;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < runs; i++) if ((await fn()) !== ROWS) throw new Error(`${name}: wrong count`);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6 / runs;
  return { name, msPerRun: +ms.toFixed(2), rowsPerSec: Math.round(ROWS / (ms / 1000)) };
}

const results = [await time('MessageFramer (views)', lean), await time('pg-protocol parse()', pgProtocol)];
console.log(JSON.stringify({ rows: ROWS, bytes: stream.length, results }));
console.table(results);
