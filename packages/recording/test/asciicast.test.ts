/**
 * asciicast v2 recordings: the format (header, o/i/r/m events), gzip on disk with the
 * SHA-256 of the stored file returned, masking of values split across chunks (and of UTF-8
 * split mid-character), input only when asked, and the per-session budget (truncated,
 * marked, never silently dropped), plus reading back.
 */
import t from 'tap';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { AsciicastWriter, asciicastName, listAsciicasts, readAsciicast, RecordingBudget } from '@gatehouse/recording';

const SESSION = '0b7d1c2e-1111-4222-8333-444455556666';
const mask = (s: string) => s.replace(/\b(?:\d[ -]?){15}\d\b/g, (m) => `****${m.replace(/\D/g, '').slice(-4)}`);

function setup(t: { teardown(f: () => void): void }) {
  const dir = mkdtempSync(join(tmpdir(), 'gh-cast-'));
  mkdirSync(join(dir, 'recordings'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function lines(file: string) {
  return gunzipSync(readFileSync(file))
    .toString('utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as unknown);
}

t.test('events, gzip, hash of the stored file', async (t) => {
  const dir = setup(t);
  let now = 1_700_000_000_000;
  const path = join(dir, 'recordings', asciicastName(SESSION, 1));
  const w = new AsciicastWriter({ path, header: { width: 80, height: 24, title: 'ls', gatehouse: { session: SESSION } }, budget: new RecordingBudget(1 << 20), now: () => now });
  w.output(Buffer.from('hello\r\n'));
  now += 1500;
  w.resize(100, 40);
  w.input(Buffer.from('secret typed\r'));
  w.marker('note');
  const s = await w.close();
  const bytes = readFileSync(path);
  t.equal(s.sha256, createHash('sha256').update(bytes).digest('hex'));
  t.equal(s.bytes, bytes.length);
  t.equal(s.file, asciicastName(SESSION, 1));
  t.same(lines(path), [
    { version: 2, timestamp: 1_700_000_000, width: 80, height: 24, title: 'ls', gatehouse: { session: SESSION } },
    [0, 'o', 'hello\r\n'],
    [1.5, 'r', '100x40'],
    [1.5, 'm', 'note'],
  ]);
  t.same(listAsciicasts(dir, SESSION), [path]);
  const read: unknown[] = [];
  for await (const ev of readAsciicast(path)) read.push(ev);
  t.equal(read.length, 4);
});

t.test('masking sees a value split across chunks and UTF-8 split mid-character', async (t) => {
  const dir = setup(t);
  let now = 0;
  const path = join(dir, 'recordings', asciicastName(SESSION, 2));
  const w = new AsciicastWriter({ path, header: { width: 80, height: 24 }, budget: new RecordingBudget(1 << 20), mask, input: true, now: () => now });
  w.output(Buffer.from('card: 4111 11'));
  now += 300;
  w.output(Buffer.from('11 1111 1111 ok\n'));
  const euro = Buffer.from('€\n');
  w.output(euro.subarray(0, 1));
  w.output(euro.subarray(1));
  w.input(Buffer.from('4111111111111111'));
  w.output(Buffer.from('prompt$ '));
  const s = await w.close();
  const ev = lines(path).slice(1) as [number, string, string][];
  const out = ev
    .filter((e) => e[1] === 'o')
    .map((e) => e[2])
    .join('');
  t.equal(out, 'card: ****1111 ok\n€\nprompt$ ');
  t.equal(ev[0][0], 0, 'stamped with the time the first byte arrived');
  t.same(
    ev.filter((e) => e[1] === 'i').map((e) => e[2]),
    ['****1111'],
    'input, when recorded, is masked too',
  );
  t.notOk(gunzipSync(readFileSync(path)).includes('4111 1111 1111 1111'));
  t.equal(s.truncated, false);
});

t.test('the session budget is shared, and its end is marked', async (t) => {
  const dir = setup(t);
  const budget = new RecordingBudget(4096);
  const a = new AsciicastWriter({ path: join(dir, 'recordings', asciicastName(SESSION, 3)), header: { width: 80, height: 24 }, budget });
  const b = new AsciicastWriter({ path: join(dir, 'recordings', asciicastName(SESSION, 4)), header: { width: 80, height: 24 }, budget });
  for (let i = 0; i < 20; i++) a.output(Buffer.from(`${'x'.repeat(100)} ${i}\n`));
  for (let i = 0; i < 50; i++) b.output(Buffer.from(`${'y'.repeat(100)} ${i}\n`));
  const sa = await a.close();
  const sb = await b.close();
  t.equal(sa.truncated, false);
  t.equal(sb.truncated, true);
  const last = lines(join(dir, 'recordings', asciicastName(SESSION, 4))).at(-1) as [number, string, string];
  t.equal(last[1], 'm');
  t.match(last[2], /truncated .*4096 bytes/);
  t.ok(budget.used <= 4096 + 200, 'nothing past the budget but the marker');
  t.equal(listAsciicasts(dir, SESSION).length, 2);
});
