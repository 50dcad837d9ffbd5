/**
 * Hold mode through the HTTP connector, with notifications: a POST waits for a reviewer and
 * reaches the upstream (a real node:http server) only once approved, bound to the SHA-256 of
 * its body; the console's event stream shows each change; a signed webhook (HMAC checked
 * here) and a Slack-compatible message are delivered while a hook answering 500 is retried
 * without delaying anything; a caller that hangs up cancels its request.
 */
import t from 'tap';
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Approval } from '@gatehouse/approvals';
import { connectorsYaml, connectorYaml } from '../../lib/gateway.js';
import { approve, kindsOf, sleep, startApprovalsGateway, TOK, waitForApproval } from './env.js';

const SECRET = 'whsec-0123456789abcdef';

interface Hit {
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
  at: number;
}

async function server(answer: (h: Hit) => number): Promise<{ url: string; hits: Hit[]; close(): Promise<void>; srv: Server }> {
  const hits: Hit[] = [];
  const srv = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const h = { path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() };
      hits.push(h);
      const status = answer(h);
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(status < 300 ? '{"refund":"ok"}' : '{"error":"boom"}');
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    hits,
    srv,
    close: () => new Promise<void>((r) => (srv.closeAllConnections(), srv.close(() => r()))),
  };
}

/** Reads `approval` events off the admin API's event stream. */
async function eventStream(base: string, token: string): Promise<{ events: Approval[]; close(): void }> {
  const ac = new AbortController();
  const res = await fetch(`${base}/api/v1/approvals/events`, { headers: { authorization: `Bearer ${token}` }, signal: ac.signal });
  if (res.status !== 200 || !res.headers.get('content-type')?.startsWith('text/event-stream')) throw new Error(`event stream: ${res.status}`);
  const events: Approval[] = [];
  void (async () => {
    let buf = '';
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buf += Buffer.from(chunk).toString('utf8');
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          if (!/^event: approval$/m.test(block)) continue;
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (data) events.push(JSON.parse(data) as Approval);
        }
      }
    } catch {
      /* closed */
    }
  })();
  return { events, close: () => ac.abort() };
}

t.test('approvals over HTTP, with webhooks, Slack and the event stream', async (t) => {
  const upstream = await server(() => 201);
  const hooks = await server(() => 204);
  const failing = await server(() => 500);
  const tg = await startApprovalsGateway(
    `approvals:
  console_url: https://console.example.test
  notify:
    - { webhook: "${failing.url}/fail", secret: "${SECRET}" }
    - { webhook: "${hooks.url}/hook", secret: "${SECRET}" }
    - { slack: "${hooks.url}/slack" }
` +
      connectorsYaml([
        connectorYaml({
          type: 'http',
          name: 'api',
          upstream: `{ url: "${upstream.url}", timeout: 5s }`,
          rules: ["{ name: big-refunds, when: 'request.json.amount > 1000', match: { method: [POST], path: /v1/refunds }, action: review }"],
          extra: ['review: { reviewers: { groups: [dba] }, mode: hold, timeout: 30s }'],
        }),
      ]),
  );
  t.teardown(async () => {
    await tg.stop();
    await Promise.all([upstream.close(), hooks.close(), failing.close()]);
  });
  const { host, port } = tg.address('api');
  const base = `http://${host}:${port}`;
  const refund = (amount: number, signal?: AbortSignal) =>
    fetch(`${base}/v1/refunds`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOK.billing}`, 'content-type': 'application/json' },
      body: JSON.stringify({ amount, customer: 7 }),
      signal,
    });

  t.test('a held POST reaches the upstream only once approved', async (t) => {
    const stream = await eventStream(tg.adminUrl, TOK.carol);
    t.teardown(() => stream.close());
    const body = JSON.stringify({ amount: 5000, customer: 7 });
    t.equal((await refund(20)).status, 201, 'a small refund is not reviewed');
    const before = upstream.hits.length;
    const pending = refund(5000);
    const a = await waitForApproval(tg.adminUrl, (x) => x.connector === 'api');
    t.equal(a.unit.type, 'request');
    t.equal(a.unit.text, 'POST /v1/refunds');
    t.equal(a.unit.paramsHash, createHash('sha256').update(body).digest('hex'), 'bound to the body');
    await sleep(200);
    t.equal(upstream.hits.length, before, 'nothing reached the upstream while held');

    const started = Date.now();
    t.equal((await approve(tg.adminUrl, TOK.dave, a.id, 'customer called')).status, 200);
    const res = await pending;
    t.equal(res.status, 201);
    t.same(await res.json(), { refund: 'ok' });
    t.ok(Date.now() - started < 2000, 'released at once (no wait for a poll)');
    t.equal(upstream.hits.at(-1)?.body, body, 'the upstream got the body');

    await sleep(300);
    t.same(
      stream.events.filter((e) => e.id === a.id).map((e) => e.status),
      ['pending', 'approved', 'used'],
      'the event stream shows every change',
    );
    t.same(kindsOf(tg.dataDir, a.id), ['approval.requested', 'approval.approved', 'approval.used']);

    // Webhooks: signed, one per change, not delayed by the failing hook's retries.
    const mine = hooks.hits.filter((h) => h.path === '/hook' && (JSON.parse(h.body) as { approval: Approval }).approval.id === a.id);
    t.same(
      mine.map((h) => (JSON.parse(h.body) as { event: string }).event),
      ['approval.requested', 'approval.approved', 'approval.used'],
    );
    for (const h of mine) {
      const ts = String(h.headers['x-gatehouse-timestamp']);
      const want = 'sha256=' + createHmac('sha256', SECRET).update(`${ts}.${h.body}`).digest('hex');
      const got = String(h.headers['x-gatehouse-signature']);
      t.ok(got.length === want.length && timingSafeEqual(Buffer.from(got), Buffer.from(want)), 'HMAC-SHA256 over timestamp.body with the secret');
      t.ok(Math.abs(Number(ts) - Date.now() / 1000) < 30, 'timestamp is now');
      t.equal((JSON.parse(h.body) as { url: string }).url, `https://console.example.test/ui/approvals/${a.id}`);
    }
    const forged = createHmac('sha256', 'another-secret-xxxxxxxx').update(`x.${mine[0].body}`).digest('hex');
    t.not(mine[0].headers['x-gatehouse-signature'], `sha256=${forged}`);
    const slack = hooks.hits.find((h) => h.path === '/slack' && h.body.includes(a.id) && h.body.includes('requested'));
    const msg = JSON.parse(slack?.body ?? '{}') as { text: string; blocks: { type: string; elements?: { url?: string }[] }[] };
    t.match(msg.text, new RegExp(`Approval ${a.id} requested: svc:billing on api \\(rule big-refunds\\)`));
    const buttons = msg.blocks.find((b) => b.type === 'actions')?.elements?.map((e) => e.url);
    t.same(buttons, [`https://console.example.test/ui/approvals/${a.id}?action=approve`, `https://console.example.test/ui/approvals/${a.id}?action=deny`]);
    const requestedAt = Date.parse(a.createdAt);
    t.ok(mine[0].at - requestedAt < 1000, 'the good hook was not held up by the failing one');
    // Retries back off (with jitter): wait for the second attempt, bounded.
    for (let i = 0; i < 100 && failing.hits.length < 2; i++) await sleep(100);
    t.ok(failing.hits.length >= 2, `the failing hook is retried (${failing.hits.length} attempts so far)`);
  });

  t.test('a caller that hangs up cancels its held request', async (t) => {
    const ac = new AbortController();
    const pending = refund(9000, ac.signal).catch((e: Error) => e);
    const a = await waitForApproval(tg.adminUrl, (x) => x.connector === 'api');
    ac.abort();
    t.type(await pending, Error);
    const c = await waitForApproval(tg.adminUrl, (x) => x.id === a.id, 'cancelled', 5000);
    t.equal(c.status, 'cancelled');
    t.same(kindsOf(tg.dataDir, a.id), ['approval.requested', 'approval.cancelled']);
  });

  t.test('the event stream needs a role', async (t) => {
    const res = await fetch(`${tg.adminUrl}/api/v1/approvals/events`, { headers: { authorization: `Bearer ${TOK.billing}` } });
    t.equal(res.status, 403);
    await res.body?.cancel();
  });
});
