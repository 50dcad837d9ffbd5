import t from 'tap';
import { spawn } from 'node:child_process';
import { startHarness, startUpstream, TOKEN, units, until } from './harness.js';

const SIZE = Number(process.env.GH_SIZE ?? 100 * 1024 * 1024);

const ECHO_SERVER = `
const http = require('node:http');
const s = http.createServer((req, res) => {
  if (req.url === '/count') { let n = 0; req.on('data', (c) => n += c.length); req.on('end', () => res.end(String(n))); return; }
  res.writeHead(200, { 'content-type': 'application/octet-stream' });
  req.pipe(res);
});
s.listen(0, '127.0.0.1', () => console.log(s.address().port));
`;

t.test('100 MB streams both ways with bounded gateway memory', async (t) => {
  // The upstream is its own process too, so that the rss below is the gateway's alone. It
  // echoes the request body back as it arrives (pipe: back-pressure on both sides).
  const upstream = spawn(process.execPath, ['-e', ECHO_SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve) => upstream.stdout.once('data', (c) => resolve(Number(String(c).trim()))));
  const h = await startHarness({ upstream: `http://127.0.0.1:${port}` });
  t.teardown(async () => {
    await h.stop();
    upstream.kill();
  });
  const auth = `Authorization: Bearer ${TOKEN}`;
  // Two sizes: if the gateway held bodies, memory would scale with them; it must not.
  for (const size of [SIZE, 4 * SIZE]) {
    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
    // curl runs in its own process, reading /dev/zero through a pipe: the bytes are only in this process in flight.
    const child = spawn(
      'sh',
      [
        '-c',
        `head -c ${size} /dev/zero | curl -sS -T - -X POST -H '${auth}' -H 'content-type: application/octet-stream' -o /dev/null -w '%{http_code} %{size_upload} %{size_download}' ${h.base}/echo`,
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (out += c));
    const code = await new Promise<number | null>((r) => child.on('close', r));
    clearInterval(sampler);
    const mb = size / 1048576;
    t.equal(code, 0, out);
    const [status, upBytes, downBytes] = out.trim().split(' ').map(Number);
    t.equal(status, 200);
    t.ok(upBytes >= size, `uploaded ${mb} MiB (plus chunk framing)`);
    t.equal(downBytes, size, `downloaded ${mb} MiB`);
    const growthMb = (peak - baseline) / 1048576;
    t.comment(`gateway rss growth while streaming ${mb} MiB each way: ${growthMb.toFixed(1)} MiB`);
    // Bounded by GC lag of in-flight 64 KiB chunks (~40-70 MiB measured), not by the body size.
    t.ok(growthMb < 100, `rss growth ${growthMb.toFixed(1)} MiB stays below 100 MiB for a ${mb} MiB body`);
    await until(() => units(h.events).length >= 1);
    const ev = units(h.events).at(-1)!;
    const attrs = ev.unit?.attributes as Record<string, unknown>;
    t.equal(attrs.request_bytes, size, 'audit counts the request bytes');
    t.equal(ev.result?.bytes, size, 'audit counts the response bytes');
    t.equal((attrs.body as string).length, 4096, 'streamed body sampled to audit_body_bytes');
    t.equal(attrs.body_truncated, true);
    h.events.length = 0;
  }
});

t.test('request body over max_body_bytes is refused with 413 when a rule needs the body', async (t) => {
  const up = await startUpstream((req, res) => {
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  const h = await startHarness({
    upstream: up.url,
    extraYaml: `    max_body_bytes: 4096
    rules:
      - { name: r, when: 'request.json.x == 1', action: deny }`,
  });
  t.teardown(async () => {
    await h.stop();
    await up.close();
  });
  for (const chunked of [false, true]) {
    const body = JSON.stringify({ x: 'y'.repeat(10_000) });
    const r = await fetch(`${h.base}/p`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: chunked ? new Blob([body]).stream() : body,
      ...(chunked ? { duplex: 'half' } : {}),
    });
    t.equal(r.status, 413, chunked ? 'chunked' : 'content-length');
    t.match(r.headers.get('content-type'), /problem\+json/);
    await r.text();
  }
  t.equal(up.seen.length, 0);
});
