import t from 'tap';
import { gzipSync, brotliCompressSync, deflateSync, gunzipSync } from 'node:zlib';
import { request } from 'undici';
import { problemDetail, startHarness, startUpstream, testMasker, TOKEN, units, until } from './harness.js';

const CARD = '4111111111111111';
const doc = { name: 'Ada', card: { number: CARD }, ssn: '078-05-1120', note: `paid with ${CARD}` };

t.test('JSON responses are masked through every content-coding, Content-Length fixed', async (t) => {
  const up = await startUpstream((req, res) => {
    const raw = Buffer.from(JSON.stringify(doc));
    const enc = req.url?.slice(1) ?? '';
    const body = enc === 'gzip' ? gzipSync(raw) : enc === 'br' ? brotliCompressSync(raw) : enc === 'deflate' ? deflateSync(raw) : raw;
    res.setHeader('content-type', 'application/json; charset=utf-8');
    res.setHeader('etag', '"abc"');
    if (enc === 'gzip' || enc === 'br' || enc === 'deflate') res.setHeader('content-encoding', enc);
    if (enc === 'stacked') {
      // Two codings in two headers (what nginx does when gzip-filtering a pre-compressed file).
      res.setHeader('content-encoding', ['gzip', 'br']);
      res.end(brotliCompressSync(gzipSync(raw)));
      return;
    }
    if (req.url === '/chunked') {
      // No Content-Length: chunked from the upstream, in two pieces.
      res.write(body.subarray(0, 10));
      setTimeout(() => res.end(body.subarray(10)), 5);
      return;
    }
    res.setHeader('content-length', body.length);
    res.end(body);
  });
  const h = await startHarness({ upstream: up.url, masker: testMasker });
  t.teardown(async () => {
    await h.stop();
    await up.close();
  });
  for (const enc of ['identity', 'gzip', 'br', 'deflate', 'chunked']) {
    // undici's request() does not decode: we see exactly the bytes and headers the gateway sent.
    const r = await request(`${h.base}/${enc}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    t.equal(r.statusCode, 200, enc);
    const raw = Buffer.from(await r.body.arrayBuffer());
    t.equal(Number(r.headers['content-length']), raw.length, `${enc}: content-length matches the masked body`);
    t.equal(r.headers.etag, undefined, `${enc}: etag of the unmasked bytes dropped`);
    const plain =
      enc === 'gzip'
        ? gunzipSync(raw)
        : enc === 'br'
          ? (await import('node:zlib')).brotliDecompressSync(raw)
          : enc === 'deflate'
            ? (await import('node:zlib')).inflateSync(raw)
            : raw;
    if (['gzip', 'br', 'deflate'].includes(enc)) t.equal(r.headers['content-encoding'], enc, `${enc}: re-encoded with the same coding`);
    const got = JSON.parse(plain.toString()) as typeof doc;
    t.equal(got.card.number, '************1111', `${enc}: card masked`);
    t.equal(got.ssn, '[redacted]', `${enc}: json key masked`);
    t.equal(got.note, 'paid with ************1111');
    t.equal(got.name, 'Ada');
    t.notOk(plain.toString().includes(CARD), `${enc}: no clear card number anywhere`);
  }
  // Stacked codings are undone layer by layer; a single decode would leave gzip bytes that no detector can read.
  const r = await request(`${h.base}/stacked`, { headers: { authorization: `Bearer ${TOKEN}` } });
  const raw = Buffer.from(await r.body.arrayBuffer());
  const zlib = await import('node:zlib');
  const plain = zlib.gunzipSync(zlib.brotliDecompressSync(raw)).toString();
  t.notOk(plain.includes(CARD), 'stacked gzip+br body masked');
  t.match(plain, /\*{12}1111/);
  await until(() => units(h.events).length >= 6);
  t.ok(units(h.events).every((e) => (e.unit?.attributes as Record<string, unknown>).masked === true));
});

t.test('a JSON response beyond max_body_bytes is refused (502), never passed unmasked', async (t) => {
  const big = JSON.stringify({ rows: Array.from({ length: 4000 }, (_, i) => ({ i, card: CARD })) });
  const up = await startUpstream((req, res) => {
    res.setHeader('content-type', 'application/json');
    if (req.url === '/chunked') {
      res.write(big.slice(0, 1000));
      res.end(big.slice(1000));
    } else res.end(big);
  });
  const h = await startHarness({ upstream: up.url, masker: testMasker, extraYaml: '    max_body_bytes: 65536' });
  t.teardown(async () => {
    await h.stop();
    await up.close();
  });
  t.ok(big.length > 65536);
  for (const path of ['/cl', '/chunked']) {
    const r = await fetch(`${h.base}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    t.equal(r.status, 502, path);
    const text = await r.text();
    t.notOk(text.includes(CARD));
    t.match(problemDetail(text), /max_body_bytes/);
  }
});

t.test('gzip bomb: decoded size is bounded too', async (t) => {
  const bomb = gzipSync(Buffer.alloc(8 * 1024 * 1024, 0x20)); // 8 MiB of spaces, ~8 KiB compressed
  const up = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': bomb.length });
    res.end(bomb);
  });
  const h = await startHarness({ upstream: up.url, masker: testMasker, extraYaml: '    max_body_bytes: 65536' });
  t.teardown(async () => {
    await h.stop();
    await up.close();
  });
  const r = await fetch(`${h.base}/`, { headers: { authorization: `Bearer ${TOKEN}` } });
  t.equal(r.status, 502);
  await r.text();
});

t.test('text bodies: always masked for a masked caller; untouched when the masker is inactive', async (t) => {
  const up = await startUpstream((req, res) => {
    res.setHeader('content-type', req.url === '/csv' ? 'text/csv' : 'application/json');
    res.end(req.url === '/csv' ? `id,card\n1,${CARD}\n` : JSON.stringify(doc));
  });
  const masked = await startHarness({ upstream: up.url, masker: testMasker });
  const none = await startHarness({ upstream: up.url });
  t.teardown(async () => {
    await masked.stop();
    await none.stop();
    await up.close();
  });
  const get = async (base: string, p: string) => (await fetch(base + p, { headers: { authorization: `Bearer ${TOKEN}` } })).text();
  t.equal(await get(masked.base, '/csv'), 'id,card\n1,************1111\n', 'text masked by the detectors (unknown_content: detectors, the default)');
  t.equal(await get(none.base, '/csv'), `id,card\n1,${CARD}\n`, 'inactive masker: text passes');
  t.equal(await get(none.base, '/json'), JSON.stringify(doc), 'inactive masker: JSON passes byte for byte');
});
