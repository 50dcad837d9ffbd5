/**
 * Notifications against real node:http receivers: signed webhook bodies, Slack messages,
 * retries with back-off on 500, a receiver that never answers is cut off by the timeout, and
 * the bounded queue drops the oldest message — none of it delays `notify()`.
 */
import t from 'tap';
import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { silentLogger } from '@gatehouse/core';
import { createNotifier, signWebhook, slackMessage, type Approval } from '../src/index.js';

const approval: Approval = {
  id: '11111111-2222-4333-8444-555555555555',
  status: 'pending',
  connector: 'payments-db',
  protocol: 'postgres',
  requester: { subject: 'svc:etl', issuer: 'static', groups: ['payments'] },
  unit: { type: 'statement', text: 'DELETE FROM accounts WHERE id < <10>' },
  rule: 'bulk-write',
  mode: 'hold',
  createdAt: new Date().toISOString(),
  expiresAt: new Date(Date.now() + 60_000).toISOString(),
  required: 1,
  approvals: [],
  session: 's',
};

async function receiver(answer: (n: number) => number | null) {
  const hits: { at: number; body: string; headers: Record<string, string | string[] | undefined> }[] = [];
  const srv = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      hits.push({ at: Date.now(), body, headers: req.headers });
      const status = answer(hits.length);
      if (status === null) return; // never answers
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}/hook`;
  return { url, hits, close: () => new Promise<void>((r) => (srv.closeAllConnections(), srv.close(() => r()))) };
}

const until = async (cond: () => boolean, ms = 5000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
};

t.test('webhook: signed over timestamp.body; retried with back-off until accepted', async (t) => {
  const r = await receiver((n) => (n < 3 ? 500 : 204));
  t.teardown(r.close);
  const n = createNotifier({ hooks: [{ webhook: r.url, secret: 'secret-0123456789' }], consoleUrl: 'http://c.test/', logger: silentLogger, baseDelayMs: 50 });
  t.teardown(() => n.close(0));
  const t0 = Date.now();
  n.notify('requested', approval);
  t.ok(Date.now() - t0 < 20, 'notify returns at once');
  await until(() => r.hits.length === 3);
  t.ok(r.hits[1].at - r.hits[0].at >= 45, 'first retry after the base delay');
  t.ok(r.hits[2].at - r.hits[1].at >= 95, 'then twice as long');
  const h = r.hits[2];
  const ts = String(h.headers['x-gatehouse-timestamp']);
  t.equal(h.headers['x-gatehouse-signature'], 'sha256=' + createHmac('sha256', 'secret-0123456789').update(`${ts}.${h.body}`).digest('hex'));
  t.equal(h.headers['x-gatehouse-signature'], signWebhook('secret-0123456789', ts, h.body));
  t.not(signWebhook('another-secret-xx', ts, h.body), h.headers['x-gatehouse-signature']);
  const body = JSON.parse(h.body) as { event: string; approval: Approval; url: string };
  t.equal(body.event, 'approval.requested');
  t.equal(body.approval.id, approval.id);
  t.equal(body.url, `http://c.test/ui/approvals/${approval.id}`);
  t.equal(r.hits.length, 3, 'no more attempts once accepted');
});

t.test('a hook that never answers is cut off by the timeout and does not hold up another hook', async (t) => {
  const hung = await receiver(() => null);
  const good = await receiver(() => 200);
  t.teardown(async () => {
    await hung.close();
    await good.close();
  });
  const n = createNotifier({
    hooks: [{ webhook: hung.url, secret: 'secret-0123456789' }, { slack: good.url }],
    consoleUrl: 'http://c.test',
    logger: silentLogger,
    timeoutMs: 200,
    attempts: 2,
    baseDelayMs: 10,
  });
  t.teardown(() => n.close(0));
  const t0 = Date.now();
  n.notify('requested', approval);
  await until(() => good.hits.length === 1, 1000);
  t.ok(good.hits[0].at - t0 < 150, 'delivered while the other hook hangs');
  await until(() => hung.hits.length === 2, 2000);
  t.pass('the hung hook was timed out and retried');
  const slack = JSON.parse(good.hits[0].body) as { text: string; blocks: unknown[] };
  t.match(slack.text, /^Approval 11111111-2222-4333-8444-555555555555 requested: svc:etl on payments-db \(rule bulk-write\): http:\/\/c\.test\/ui\/approvals\//);
});

t.test('the queue per hook is bounded: the oldest is dropped', async (t) => {
  const hung = await receiver(() => null);
  t.teardown(hung.close);
  const n = createNotifier({ hooks: [{ webhook: hung.url, secret: 'secret-0123456789' }], consoleUrl: 'http://c.test', logger: silentLogger, timeoutMs: 5000, maxQueue: 3 });
  for (let i = 0; i < 10; i++) n.notify('requested', { ...approval, id: `id-${i}` });
  // Delivery starts on a later turn: three wait, seven were dropped.
  t.equal(n.dropped, 7);
  const t0 = Date.now();
  await n.close(50);
  t.ok(Date.now() - t0 < 1000, 'close is bounded even with a hung hook');
});

t.test('slack message: escaped text, approve/deny links only while pending', async (t) => {
  const m = slackMessage('requested', { ...approval, unit: { type: 'statement', text: 'SELECT 1 <script>&' } }, 'http://c.test/ui/approvals/x');
  t.match(JSON.stringify(m.blocks), /SELECT 1 &lt;script&gt;&amp;/);
  t.ok(m.blocks.some((b) => (b as { type: string }).type === 'actions'));
  t.notOk(slackMessage('approved', approval, 'l').blocks.some((b) => (b as { type: string }).type === 'actions'));
});
