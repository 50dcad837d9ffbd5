/**
 * A gateway whose audit store cannot write refuses work and says so. The store hits a real
 * write error: the gateway runs under `ulimit -f`, so once the audit files reach the limit
 * write(2) fails with EFBIG, exactly what a full disk looks like to SQLite.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { verifyLog } from '@gatehouse/audit';

const BIN = fileURLToPath(new URL('../../../../gateway/bin/gatehouse.js', import.meta.url));
const TOKEN = 'tok-fail-closed-0123456789';

t.test('audit store write failure: work refused, /healthz 503, committed prefix verifies', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-failclosed-'));
  const upstream = createServer((_req, res) => res.end('{"ok":true}'));
  upstream.listen(0, '127.0.0.1');
  await once(upstream, 'listening');
  t.teardown(() => {
    upstream.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const cfg = join(dir, 'g.yaml');
  writeFileSync(
    cfg,
    `data_dir: ./data
admin: { listen: 127.0.0.1:0 }
log: { level: error }
identity:
  static_tokens: [ { token: "${TOKEN}", subject: "svc:a", groups: [g] } ]
connectors:
  - name: api
    type: http
    listen: 127.0.0.1:0
    upstream: { url: "http://127.0.0.1:${(upstream.address() as AddressInfo).port}" }
    allow: [ { groups: [g] } ]
`,
  );
  // 3 MiB: room to start and serve a while, then the WAL hits the limit.
  const child = spawn('bash', ['-c', `ulimit -f 3072 && exec "${process.execPath}" "${BIN}" start -c "${cfg}"`], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const deadline = Date.now() + 20_000;
  while (!/connector api on/.test(out) && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 50));
  const admin = /admin on (http:\/\/[\d.:]+)/.exec(out)?.[1];
  const api = /connector api on ([\d.:]+)/.exec(out)?.[1];
  t.ok(admin && api, 'gateway started');
  if (!admin || !api) return;

  t.equal((await fetch(`${admin}/healthz`)).status, 200);
  const pad = 'x'.repeat(3000);
  // The request in flight when the write fails is cut off (its final bytes are never
  // released unaudited); every later one is answered 503.
  let refusal: Response | 'connection closed' | null = null;
  let served = 0;
  for (let i = 0; i < 5000 && !refusal; i++) {
    const r = await fetch(`http://${api}/v1/items?pad=${pad}&i=${i}`, { headers: { authorization: `Bearer ${TOKEN}` } }).catch(() => 'connection closed' as const);
    if (r !== 'connection closed' && r.status === 200) {
      served++;
      await r.arrayBuffer();
    } else refusal = r;
  }
  t.ok(served > 10, `served ${served} requests before the store filled up`);
  t.ok(refusal, 'a request was refused once the audit store could not write');
  if (refusal instanceof Response) t.equal(refusal.status, 503);
  t.equal(child.exitCode, null, 'the gateway keeps running');

  const health = await fetch(`${admin}/healthz`);
  t.equal(health.status, 503, '/healthz says the gateway is failing');
  t.match(await health.json(), { status: 'failing', audit: { status: 'failing' } });
  const metrics = await (await fetch(`${admin}/metrics`)).text();
  t.match(metrics, /gatehouse_audit_failed 1/);

  const again = await fetch(`http://${api}/v1/items`, { headers: { authorization: `Bearer ${TOKEN}` } });
  t.equal(again.status, 503, 'the failure sticks: later work is refused with 503');
  t.match(await again.json(), { status: 503, detail: /audit/ });

  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  await exited;
  t.match(out, /AUDIT LOG UNAVAILABLE/, 'the gateway says so loudly in its log');
  const report = verifyLog(join(dir, 'data'));
  t.ok(report.ok, `the committed prefix verifies (${report.size} events${report.reason ? `; ${report.reason}` : ''})`);
  t.ok(report.size >= served, 'every request that was served is in the log');
});
