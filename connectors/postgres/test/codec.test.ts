/**
 * The connector's own codec: the framer (chunk boundaries, zero-copy views, bounds),
 * frontend decoding, DataRow masking (text and binary) and the refusal SQL.
 */
import t from 'tap';
import { serialize } from 'pg-protocol';
import type { ColumnMaskPlan, Masker } from '@gatehouse/core';
import { bindParams, commandRows, maskDataRow, MessageFramer, raiseSql, readBind, readRowDescription, sampleRow } from '../src/index.js';
import { binaryToText } from '../src/binary-text.js';

function msg(type: string, body: Buffer): Buffer {
  const b = Buffer.alloc(5 + body.length);
  b[0] = type.charCodeAt(0);
  b.writeInt32BE(4 + body.length, 1);
  body.copy(b, 5);
  return b;
}
const query = (sql: string) => serialize.query(sql);

t.test('framer: whole messages are views of the chunk, split ones are reassembled', async (t) => {
  const a = query('SELECT 1');
  const b = query('SELECT 2');
  const f = new MessageFramer(1024);
  const chunk = Buffer.concat([a, b]);
  f.push(chunk);
  const m1 = f.next()!;
  t.equal(m1.bytes.buffer, chunk.buffer, 'no copy for a message inside a chunk');
  t.same(m1.bytes, a);
  t.same(f.next()!.bytes, b);
  t.equal(f.next(), null);

  // Every split point, including inside the 5-byte header.
  const stream = Buffer.concat([a, b, a]);
  for (let cut = 1; cut < stream.length; cut++) {
    const g = new MessageFramer(1024);
    const got: Buffer[] = [];
    g.push(stream.subarray(0, cut));
    for (let m = g.next(); m; m = g.next()) got.push(Buffer.from(m.bytes));
    g.push(stream.subarray(cut));
    for (let m = g.next(); m; m = g.next()) got.push(Buffer.from(m.bytes));
    t.same(got, [a, b, a], `split at ${cut}`);
  }
  // One byte at a time.
  const h = new MessageFramer(1024);
  const got: Buffer[] = [];
  for (const byte of stream) {
    h.push(Buffer.from([byte]));
    for (let m = h.next(); m; m = h.next()) got.push(Buffer.from(m.bytes));
  }
  t.same(got, [a, b, a]);
});

t.test('framer: bounds', async (t) => {
  const f = new MessageFramer(100);
  const big = Buffer.alloc(5);
  big[0] = 0x51;
  big.writeInt32BE(1_000_000, 1);
  f.push(big);
  t.equal(f.next(), null);
  t.same(f.error, { code: 'too_large', length: 1_000_001 }, 'refused from the header, before buffering');
  const g = new MessageFramer(100);
  g.push(Buffer.from([0x51, 0, 0, 0, 2]));
  t.equal(g.next(), null);
  t.equal(g.error?.code, 'bad_length');
});

t.test('bind parameters for the audit: text, NULL, binary as hex, capped', async (t) => {
  // Formats text, binary, text (a Buffer value is sent as binary); binary results.
  const bind = serialize.bind({ portal: 'p1', statement: 's1', values: ['hello', Buffer.from([0, 0, 1, 0]), null], binary: true });
  const b = readBind(bind);
  t.equal(b.portal, 'p1');
  t.equal(b.statement, 's1');
  t.same(bindParams(bind), ['hello', '\\x00000100', null]);
  t.throws(() => readBind(bind.subarray(0, bind.length - 1)), RangeError, 'truncated Bind refused');
});

/** A masker with a last4 rule on `card` and a "redact emails" detector on every column. */
const masker: Masker = {
  active: true,
  planColumns(names): ColumnMaskPlan {
    const columns = names.map((n) =>
      n === 'card' ? (v: string) => '*'.repeat(Math.max(0, v.length - 4)) + v.slice(-4) : (v: string) => (v.includes('@') ? v.replace(/\S+@\S+/g, '[REDACTED]') : v),
    );
    return { columns, any: true };
  },
  maskText: (s) => s,
  maskJson: (v) => ({ value: v, changed: false }),
};

function rowDescription(cols: { name: string; oid: number; format: number }[]): Buffer {
  const parts: Buffer[] = [Buffer.alloc(2)];
  parts[0].writeInt16BE(cols.length);
  for (const c of cols) {
    const f = Buffer.alloc(18);
    f.writeInt32BE(0, 0);
    f.writeInt16BE(0, 4);
    f.writeInt32BE(c.oid, 6);
    f.writeInt16BE(-1, 10);
    f.writeInt32BE(-1, 12);
    f.writeInt16BE(c.format, 16);
    parts.push(Buffer.from(c.name + '\0'), f);
  }
  return msg('T', Buffer.concat(parts));
}

function dataRow(values: (Buffer | null)[]): Buffer {
  const parts: Buffer[] = [Buffer.alloc(2)];
  parts[0].writeInt16BE(values.length);
  for (const v of values) {
    const l = Buffer.alloc(4);
    l.writeInt32BE(v ? v.length : -1);
    parts.push(l);
    if (v) parts.push(v);
  }
  return msg('D', Buffer.concat(parts));
}

t.test('DataRow masking: text, binary text types, binary numbers, NULLs, lengths rewritten', async (t) => {
  const shape = readRowDescription(
    rowDescription([
      { name: 'id', oid: 23, format: 1 },
      { name: 'card', oid: 25, format: 0 },
      { name: 'note', oid: 1043, format: 1 },
      { name: 'card', oid: 20, format: 1 },
      { name: 'gone', oid: 25, format: 0 },
      { name: 'blob', oid: 17, format: 1 },
    ]),
    masker,
    null,
  );
  t.same(shape.names, ['id', 'card', 'note', 'card', 'gone', 'blob']);
  const int4 = Buffer.alloc(4);
  int4.writeInt32BE(42);
  const int8 = Buffer.alloc(8);
  int8.writeBigInt64BE(4111111111111111n);
  const row = dataRow([int4, Buffer.from('4111111111111111'), Buffer.from('mail a@b.io now'), int8, null, Buffer.from('x@y')]);
  const out = maskDataRow(row, shape);
  t.not(out, row);
  t.equal(out.readInt32BE(1), out.length - 1, 'length rewritten');
  t.same(sampleRow(out, shape), ['42', '************1111', 'mail [REDACTED] now', null, null, null]);

  const clean = dataRow([int4, null, Buffer.from('nothing here'), null, null, null]);
  t.equal(maskDataRow(clean, shape), clean, 'an untouched row is the same buffer');
});

t.test('binary renderings used to judge binary values', async (t) => {
  const num = Buffer.from([0, 3, 0, 1, 0, 0, 0, 2, 0, 12, 0x0d, 0x80, 0x13, 0x88]); // 12 3456.5000 → 123456.50
  t.equal(binaryToText(1700, num, 0, num.length), '123456.50');
  const d = Buffer.alloc(4);
  d.writeInt32BE(0);
  t.equal(binaryToText(1082, d, 0, 4), '2000-01-01');
  t.equal(binaryToText(600, d, 0, 4), undefined, 'unknown binary type: cannot judge');
});

t.test('command tags', async (t) => {
  t.same(commandRows(msg('C', Buffer.from('INSERT 0 3\0'))), { tag: 'INSERT 0 3', rows: 3 });
  t.same(commandRows(msg('C', Buffer.from('BEGIN\0'))), { tag: 'BEGIN', rows: undefined });
});

t.test('refusal SQL cannot be broken out of', async (t) => {
  const sql = raiseSql(`it's a \\ trap $gatehouse$; DROP TABLE x; --`);
  t.notMatch(sql.slice(sql.indexOf("E'")), /\$gatehouse\$;/);
  t.match(sql, /E'it''s a \\\\ trap gatehouse; DROP TABLE x; --'/);
});
