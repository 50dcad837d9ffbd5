/**
 * A hostile masked caller against the response side: every body type, every way of hiding a
 * value from the masking (encodings, charsets, labels, ranges, headers) — each either masked
 * or refused with 502, never passed in clear. Callers without masking keep the raw stream.
 */
import t from 'tap';
import { gzipSync, brotliCompressSync } from 'node:zlib';
import type { ServerResponse } from 'node:http';
import { request } from 'undici';
import { problemDetail, startHarness, startUpstream, testMasker, TOKEN, units, until, type Harness } from './harness.js';

const CARD = '4111111111111111';
const MASKED = '************1111';
const auth = { authorization: `Bearer ${TOKEN}` };
const doc = { name: 'Ada', ssn: '078-05-1120', note: `paid with ${CARD}` };

/** Upstream answers: path → handler. */
type Route = (res: ServerResponse) => void;
const send =
  (type: string | null, body: string | Buffer, extra: Record<string, string | string[]> = {}): Route =>
  (res) => {
    if (type !== null) res.setHeader('content-type', type);
    for (const [k, v] of Object.entries(extra)) res.setHeader(k, v);
    res.end(body);
  };

const routes: Record<string, Route> = {
  '/ndjson': send('application/x-ndjson', `${JSON.stringify(doc)}\n{"id":2,"card":"${CARD}"}\n`),
  '/jsonl': send('application/jsonl', `${JSON.stringify(doc)}\r\n\r\n${JSON.stringify({ ssn: '123-45-6789' })}`),
  '/json-seq': send('application/json-seq', `\x1e${JSON.stringify(doc)}\n\x1e${JSON.stringify({ ssn: 'x' })}\n`),
  '/ndjson-bad-line': send('application/x-ndjson', `${JSON.stringify(doc)}\n{"ssn": "078-05-1120"} trailing\n`),
  '/bom': send('application/json', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify(doc))])),
  '/scalar': send('application/json', `"${CARD}"`),
  '/trailing': send('application/json', `${JSON.stringify(doc)} {"more":1}`),
  '/not-json': send('application/json', `ssn=078-05-1120 card=${CARD}`),
  '/gzip-unlabelled': send('application/json', gzipSync(JSON.stringify(doc))),
  '/gzip-text-unlabelled': send('text/plain', gzipSync(`card ${CARD}`)),
  '/gzip-octets-unlabelled': send('application/octet-stream', gzipSync(`card ${CARD}`)),
  '/brotli-text-unlabelled': send('text/plain', brotliCompressSync(Buffer.from(`card ${CARD} `.repeat(20)))),
  '/utf16-json': send('application/json; charset=utf-16le', Buffer.from(JSON.stringify(doc), 'utf16le')),
  '/utf16-text': send('text/plain; charset=utf-16', Buffer.from(`card ${CARD}`, 'utf16le')),
  '/bad-utf8-json': send('application/json', Buffer.concat([Buffer.from('{"note":"41'), Buffer.from([0xff]), Buffer.from('11111111111111"}')])),
  '/dup-keys': send('application/json', `{"note":"${CARD}","note":"x"}`),
  '/text': send('text/plain; charset=utf-8', `card ${CARD} ok`),
  '/html': send('text/html', `<p>card <b>${CARD}</b></p>`),
  '/latin1': send('text/plain; charset=iso-8859-1', Buffer.concat([Buffer.from('caf'), Buffer.from([0xe9]), Buffer.from(` ${CARD}`)])),
  '/none': send(null, `card ${CARD}`),
  '/multipart': send('multipart/mixed; boundary=b', `--b\r\ncontent-type: text/plain\r\n\r\ncard ${CARD}\r\n--b--\r\n`),
  '/binary': send('application/vnd.example', `opaque ${CARD}`),
  '/empty-html': send('text/html', ''),
  '/big-text': send('text/plain', 'x'.repeat(70_000)),
  '/two-types': (res) => {
    res.setHeader('content-type', ['text/plain', 'application/json']);
    res.end(`card ${CARD}`);
  },
  '/headers': send('application/json', '{}', {
    location: `/v1/cards/${CARD}`,
    'content-location': '/v1/cards/%34%31%31%31111111111111',
    'x-card': `card=${CARD}`,
    'set-cookie': [`last=${CARD}; Path=/`, 'plain=1; Path=/'],
    'x-fine': 'nothing here',
  }),
  '/reason': (res) => {
    res.statusMessage = `OK ${CARD}`;
    res.setHeader('content-type', 'application/json');
    res.end('{}');
  },
  '/partial': (res) => {
    res.writeHead(206, { 'content-type': 'text/plain', 'content-range': 'bytes 0-7/16' });
    res.end(CARD.slice(0, 8));
  },
};

async function setup(
  t: { teardown(fn: () => Promise<void>): void },
  extraYaml = '    max_body_bytes: 65536',
): Promise<{ h: Harness; plain: Harness; ranges: (string | undefined)[] }> {
  const ranges: (string | undefined)[] = [];
  const up = await startUpstream((req, res) => {
    ranges.push(req.headers.range);
    const route = routes[(req.url ?? '').split('?')[0]];
    if (route) route(res);
    else {
      res.statusCode = 404;
      res.end();
    }
  });
  const h = await startHarness({ upstream: up.url, masker: testMasker, extraYaml });
  const plain = await startHarness({ upstream: up.url, extraYaml });
  t.teardown(async () => {
    await h.stop();
    await plain.stop();
    await up.close();
  });
  return { h, plain, ranges };
}

const get = async (base: string, path: string, headers: Record<string, string> = {}) => {
  const r = await request(base + path, { headers: { ...auth, ...headers } });
  const body = Buffer.from(await r.body.arrayBuffer());
  return { status: r.statusCode, headers: r.headers, body, text: body.toString('latin1') };
};

t.test('JSON lines, BOM, top-level scalars and duplicate keys are masked', async (t) => {
  const { h } = await setup(t);
  const nd = await get(h.base, '/ndjson');
  t.equal(nd.status, 200);
  const lines = nd.text
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  t.equal(lines[0].ssn, '[redacted]', 'JSON-path rule applied on line 1');
  t.equal(lines[0].note, `paid with ${MASKED}`);
  t.equal(lines[1].card, MASKED, 'detectors on line 2');
  t.equal(Number(nd.headers['content-length']), nd.body.length);
  const jl = await get(h.base, '/jsonl');
  t.notOk(jl.text.includes('123-45-6789'), 'application/jsonl: ssn path rule on a later line');
  t.ok(jl.text.includes('\r\n\r\n'), 'line ends kept');
  const seq = await get(h.base, '/json-seq');
  t.equal(seq.status, 200);
  t.ok(seq.text.startsWith('\x1e{'), 'json-seq record separators kept');
  t.notOk(seq.text.includes('078-05-1120'));
  const bom = await get(h.base, '/bom');
  t.equal(bom.status, 200, 'a BOM is stripped, not a reason to pass the body');
  t.equal((JSON.parse(bom.text) as typeof doc).ssn, '[redacted]');
  t.equal((await get(h.base, '/scalar')).text, `"${MASKED}"`, 'a top-level JSON string is masked');
  t.equal((await get(h.base, '/dup-keys')).text, '{"note":"x"}', 'duplicate keys collapsed to the one masking saw');
  for (const r of [nd, jl, seq, bom]) t.notOk(r.text.includes(CARD));
});

t.test('a body declared as JSON that is not one clean UTF-8 JSON document is refused (502)', async (t) => {
  const { h, plain } = await setup(t);
  for (const path of ['/trailing', '/not-json', '/gzip-unlabelled', '/utf16-json', '/bad-utf8-json', '/ndjson-bad-line']) {
    const r = await get(h.base, path);
    t.equal(r.status, 502, path);
    t.match(r.headers['content-type'], /problem\+json/, path);
    t.notOk(r.text.includes(CARD), `${path}: no clear value`);
    t.notOk(r.text.includes('078-05-1120'), `${path}: no clear ssn`);
  }
  t.match(problemDetail((await get(h.base, '/gzip-unlabelled')).text), /gzip data that no Content-Encoding names/);
  t.match(problemDetail((await get(h.base, '/utf16-json')).text), /charset utf-16le/);
  // The same bodies reach a caller without masking exactly as the upstream sent them.
  t.equal((await get(plain.base, '/trailing')).text, `${JSON.stringify(doc)} {"more":1}`);
  await until(() => units(h.events).length >= 8);
  t.ok(
    units(h.events)
      .filter((e) => e.result?.status === 502)
      .every((e) => typeof e.result?.error === 'string'),
    'refusals audited with the reason',
  );
});

t.test('text, HTML, no Content-Type, multipart, unknown types: masked by the detectors (default)', async (t) => {
  const { h, plain } = await setup(t);
  const expect: Record<string, string> = {
    '/text': `card ${MASKED} ok`,
    '/html': `<p>card <b>${MASKED}</b></p>`,
    '/none': `card ${MASKED}`,
    '/multipart': `--b\r\ncontent-type: text/plain\r\n\r\ncard ${MASKED}\r\n--b--\r\n`,
    '/binary': `opaque ${MASKED}`,
    '/latin1': `caf\xe9 ${MASKED}`,
  };
  for (const [path, body] of Object.entries(expect)) {
    const r = await get(h.base, path);
    t.equal(r.status, 200, path);
    t.equal(r.text, body, `${path}: masked, other bytes untouched`);
    t.equal(Number(r.headers['content-length']), r.body.length, `${path}: content-length of the masked body`);
    t.equal((await get(plain.base, path)).text.includes(CARD), true, `${path}: unmasked caller gets the raw body`);
  }
});

t.test('text hiding its values is refused: unlabelled compression, UTF-16, over the cap, ambiguous type, partial content', async (t) => {
  const { h, ranges } = await setup(t);
  for (const path of ['/gzip-text-unlabelled', '/gzip-octets-unlabelled', '/brotli-text-unlabelled', '/utf16-text', '/big-text', '/two-types', '/partial']) {
    const r = await get(h.base, path);
    t.equal(r.status, 502, path);
    t.notOk(r.text.includes(CARD.slice(0, 8)), `${path}: nothing of the body`);
  }
  t.match(problemDetail((await get(h.base, '/big-text')).text), /max_body_bytes/);
  // A masked caller's Range never reaches the upstream: parts of a body could be masked one by one and joined.
  ranges.length = 0;
  const r = await get(h.base, '/text', { range: 'bytes=5-12', 'if-range': '"x"' });
  t.equal(r.status, 200);
  t.same(ranges, [undefined], 'Range removed');
  t.equal(r.text, `card ${MASKED} ok`, 'the whole body, masked');
});

t.test('unknown_content: refuse answers 502 for every body the JSON rules cannot read; JSON still masked', async (t) => {
  const { h } = await setup(t, '    max_body_bytes: 65536\n    unknown_content: refuse');
  for (const path of ['/text', '/html', '/none', '/multipart', '/binary', '/big-text']) {
    const r = await get(h.base, path);
    t.equal(r.status, 502, path);
    t.match(problemDetail(r.text), /unknown_content is refuse|max_body_bytes/, path);
  }
  const empty = await get(h.base, '/empty-html');
  t.equal(empty.status, 200, 'an empty body has nothing to hide');
  const nd = await get(h.base, '/ndjson');
  t.equal(nd.status, 200);
  t.notOk(nd.text.includes(CARD));
});

t.test('response headers and the reason phrase go through the detectors', async (t) => {
  const { h, plain } = await setup(t);
  const r = await get(h.base, '/headers');
  t.equal(r.status, 200);
  t.equal(r.headers.location, `/v1/cards/${MASKED}`);
  t.equal(r.headers['content-location'], `/v1/cards/${MASKED}`, 'percent-encoded value decoded, then masked');
  t.equal(r.headers['x-card'], `card=${MASKED}`);
  t.same(r.headers['set-cookie'], [`last=${MASKED}; Path=/`, 'plain=1; Path=/'], 'cookies pass only when nothing is found');
  t.equal(r.headers['x-fine'], 'nothing here');
  t.notOk(JSON.stringify(r.headers).includes(CARD));
  const p = await get(plain.base, '/headers');
  t.equal(p.headers.location, `/v1/cards/${CARD}`, 'unmasked caller: headers untouched');
  // undici's request() hides the reason phrase: read the status line off the wire.
  const line = await statusLine(h, '/reason');
  t.equal(line, 'HTTP/1.1 200 OK', 'upstream reason phrase not relayed to a masked caller');
  t.equal(await statusLine(plain, '/reason'), `HTTP/1.1 200 OK ${CARD}`);
});

async function statusLine(h: Harness, path: string): Promise<string> {
  const { connect } = await import('node:net');
  return new Promise((resolve, reject) => {
    const s = connect(h.port, h.host);
    let out = '';
    s.on('data', (c) => {
      out += c.toString('latin1');
      if (out.includes('\r\n')) {
        s.destroy();
        resolve(out.slice(0, out.indexOf('\r\n')));
      }
    });
    s.on('error', reject);
    s.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`);
  });
}

t.test('server-sent events stream to a masked caller, masked line by line', async (t) => {
  let release: () => void = () => {};
  const released = new Promise<void>((r) => (release = r));
  const up = await startUpstream((req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'x-card': CARD });
    if (req.url === '/long') {
      res.write(`data: ${'x'.repeat(2000)}`); // no line end within the cap
      setTimeout(() => res.end(), 200);
      return;
    }
    if (req.url === '/binary') {
      res.end(gzipSync(`data: ${CARD}\n\n`));
      return;
    }
    // A card number split over two upstream chunks: never half-sent.
    res.write(`event: pay\ndata: ${CARD.slice(0, 8)}`);
    setTimeout(() => {
      res.write(`${CARD.slice(8)}\n\n`);
      void released.then(() => res.end(`data: bye ${CARD}\n\n`));
    }, 20);
  });
  const h = await startHarness({ upstream: up.url, masker: testMasker, extraYaml: '    max_body_bytes: 1024' });
  const refuse = await startHarness({ upstream: up.url, masker: testMasker, extraYaml: '    unknown_content: refuse' });
  t.teardown(async () => {
    release();
    await h.stop();
    await refuse.stop();
    await up.close();
  });
  const r = await request(`${h.base}/events`, { headers: auth });
  t.equal(r.statusCode, 200);
  t.equal(r.headers['x-card'], MASKED);
  t.equal(r.headers['content-length'], undefined, 'no length: the stream is re-framed');
  let got = '';
  for await (const c of r.body) {
    got += (c as Buffer).toString();
    if (got.includes('\n\n')) break; // first event in, the upstream has not ended
  }
  t.equal(got, `event: pay\ndata: ${MASKED}\n\n`, 'first event delivered masked while the stream is open');
  release();
  const rest = await request(`${h.base}/events`, { headers: auth });
  const all = await rest.body.text();
  t.equal(all, `event: pay\ndata: ${MASKED}\n\ndata: bye ${MASKED}\n\n`);
  await until(() => units(h.events).length >= 2);
  t.ok(units(h.events).every((e) => (e.unit?.attributes as Record<string, unknown>).masked === true));

  // A line longer than max_body_bytes, or binary bytes: the stream is cut, nothing unmasked leaves.
  for (const path of ['/long', '/binary']) {
    const text = await request(`${h.base}${path}`, { headers: auth })
      .then((bad) => bad.body.text())
      .catch((e: Error) => `cut: ${e.message}`);
    t.match(text, /^cut: /, `${path}: connection cut`);
    t.notOk(text.includes('xxxxxxxx') || text.includes(CARD), `${path}: nothing of the offending line`);
  }
  const refused = await request(`${refuse.base}/events`, { headers: auth });
  t.equal(refused.statusCode, 502, 'unknown_content: refuse covers event streams');
  await refused.body.text();
});
