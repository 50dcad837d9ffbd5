/**
 * The synchronous request path (docs/decisions/0505-http-hot-path.md): with `batched` audit the
 * Session answers `record` at once and the connector finishes the exchange in the same turn.
 * The guarantees must hold there exactly as on the awaited path: every request audited before
 * its answer completes, masking applied, refusals audited, failures closed.
 */
import t from 'tap';
import { gzipSync, gunzipSync } from 'node:zlib';
import { Client, request } from 'undici';
import type { Decision, Session, Unit } from '@gatehouse/core';
import { judgeUnit } from '../src/judge.js';
import { maskBody } from '../src/mask-response.js';
import { mediaType } from '../src/media-type.js';
import { startHarness, startUpstream, testMasker, TOKEN, units } from './harness.js';

const CARD = '4111111111111111';
const auth = { authorization: `Bearer ${TOKEN}` };

t.test('batched audit: answered in the same turn, still audited first', async (t) => {
  const up = await startUpstream((req, res) => {
    let n = 0;
    req.on('data', (c: Buffer) => (n += c.length));
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ path: req.url, got: n }));
    });
  });
  const h = await startHarness({
    upstream: up.url,
    durability: 'batched',
    decide: (u) => (u.match.method === 'DELETE' ? { action: 'deny', rule: 'no-delete' } : { action: 'allow' }),
  });
  t.teardown(async () => {
    await h.stop();
    await up.close();
  });

  // One connection: keep-alive requests of one caller share its Session.
  const client = new Client(h.base);
  t.teardown(() => client.close());
  for (const path of ['/v1/a', '/v1/b']) {
    const r = await client.request({ path, method: 'GET', headers: auth });
    t.equal(r.statusCode, 200);
    t.same(await r.body.json(), { path, got: 0 });
    // Recorded before the body's last byte left: already there when the caller has it.
    const e = units(h.events).at(-1);
    t.equal(e?.unit?.text, `GET ${path}`);
    t.equal(e?.result?.status, 200);
    t.equal(e?.unit?.attributes?.upstream, new URL(up.url).origin);
    t.equal((e?.unit?.attributes?.headers as Record<string, string>).authorization, '[removed]', 'the token never reaches the audit');
  }
  t.equal(h.events.filter((e) => e.kind === 'session.start').length, 1, 'keep-alive requests share one session');

  const denied = await request(`${h.base}/v1/a`, { method: 'DELETE', headers: auth });
  t.equal(denied.statusCode, 403);
  await denied.body.text();
  t.equal(units(h.events).at(-1)?.decision?.action, 'deny', 'the refusal is audited before it is answered');

  // A body above audit_body_bytes streams through (not buffered) on the same path.
  const big = Buffer.alloc(200_000, 0x61);
  const posted = await request(`${h.base}/v1/upload`, { method: 'POST', headers: auth, body: big });
  t.equal(posted.statusCode, 200);
  t.same(await posted.body.json(), { path: '/v1/upload', got: big.length });
  t.equal(units(h.events).at(-1)?.unit?.attributes?.request_bytes, big.length);
  t.equal(up.seen.filter((s) => s.method === 'DELETE').length, 0, 'the denied request never reached the upstream');
});

t.test('batched audit: a masked caller gets masked bodies, synchronously masked or not', async (t) => {
  const doc = JSON.stringify({ card: { number: CARD }, ssn: '078-05-1120' });
  const up = await startUpstream((req, res) => {
    res.setHeader('content-type', 'application/json');
    if (req.url === '/gzip') {
      res.setHeader('content-encoding', 'gzip');
      res.end(gzipSync(doc));
    } else res.end(doc);
  });
  const h = await startHarness({ upstream: up.url, durability: 'batched', masker: testMasker });
  t.teardown(async () => {
    await h.stop();
    await up.close();
  });
  for (const path of ['/plain', '/gzip']) {
    const r = await request(`${h.base}${path}`, { headers: auth });
    t.equal(r.statusCode, 200, path);
    const raw = Buffer.from(await r.body.arrayBuffer());
    const text = (path === '/gzip' ? gunzipSync(raw) : raw).toString();
    t.notMatch(text, CARD, `${path}: no clear card number`);
    t.match(text, '************1111');
    t.match(text, '"ssn":"[redacted]"');
    t.equal(Number(r.headers['content-length']), raw.length, `${path}: Content-Length recomputed`);
    t.equal(units(h.events).at(-1)?.unit?.attributes?.masked, true);
  }
});

t.test('batched audit failing after the decision: the caller never gets a complete answer', async (t) => {
  let h: Awaited<ReturnType<typeof startHarness>> | null = null;
  const up = await startUpstream((_req, res) => {
    h?.breakAudit(); // the log fails while the request is upstream: decided, not yet recorded
    res.setHeader('content-type', 'application/json');
    res.end('{"fine":true}');
  });
  h = await startHarness({ upstream: up.url, durability: 'batched' });
  t.teardown(async () => {
    await h?.stop();
    await up.close();
  });
  const outcome = await request(`${h.base}/x`, { headers: auth }).then(
    (r) => r.body.text().then((body) => `${r.statusCode} ${body}`),
    (e: Error) => `error ${e.message}`,
  );
  t.notMatch(outcome, /^200 \{"fine":true\}$/, `no success without an audit event (got: ${outcome})`);
  t.equal(units(h.events).length, 0, 'nothing was recorded');
  t.equal(up.seen.length, 1);
});

t.test('a policy engine that throws: 500, nothing forwarded, the gateway keeps serving', async (t) => {
  const up = await startUpstream((_req, res) => res.end('ok'));
  const h = await startHarness({
    upstream: up.url,
    durability: 'batched',
    decide: (u) => {
      if (u.match.path === '/boom') throw new Error('policy bug');
      return { action: 'allow' };
    },
  });
  t.teardown(async () => {
    await h.stop();
    await up.close();
  });
  const boom = await request(`${h.base}/boom`, { headers: auth });
  t.equal(boom.statusCode, 500);
  t.equal(((await boom.body.json()) as { type: string }).type, 'urn:gatehouse:problem:internal');
  const fine = await request(`${h.base}/fine`, { headers: auth });
  t.equal(fine.statusCode, 200);
  t.equal(await fine.body.text(), 'ok');
  t.same(
    up.seen.map((s) => s.url),
    ['/fine'],
  );
});

t.test('judgeUnit: a plain decision unless a review holds the request', async (t) => {
  const unit: Unit = { type: 'request', text: 'GET /x', match: { method: 'GET', path: '/x' }, context: {} };
  const session = (action: Decision['action']) =>
    ({
      decide: (): Decision => ({ action, rule: 'r' }),
      review: (): Promise<Decision> => Promise.resolve({ action: 'allow', rule: 'r' }),
    }) as unknown as Session;
  const allowed = judgeUnit(session('allow'), unit, null);
  t.notOk(allowed instanceof Promise);
  t.same(allowed, { action: 'allow', rule: 'r' });
  const denied = judgeUnit(session('deny'), unit, null);
  t.same(denied, { action: 'deny', rule: 'r' });
  const reviewed = judgeUnit(session('review'), unit, null);
  t.ok(reviewed instanceof Promise, 'a review waits');
  t.same(await reviewed, { action: 'allow', rule: 'r' });
});

t.test('maskBody: synchronous without Content-Encoding, the same answer either way', async (t) => {
  const body = Buffer.from(JSON.stringify({ card: CARD, plain: 'x' }));
  const json = mediaType('application/json');
  const plain = maskBody(body, json, '', testMasker, 1 << 20);
  t.notOk(plain instanceof Promise);
  const coded = maskBody(gzipSync(body), json, 'gzip', testMasker, 1 << 20);
  t.ok(coded instanceof Promise);
  const a = await plain;
  const b = await coded;
  if (!a.ok || !b.ok) return t.fail('both mask');
  t.equal(a.value.changed, true);
  t.equal(gunzipSync(b.value.body).toString(), a.value.body.toString());
  t.notMatch(a.value.body.toString(), CARD);
  const untouched = maskBody(Buffer.from('{"a":1}'), json, 'identity', testMasker, 1 << 20);
  t.notOk(untouched instanceof Promise);
  t.same(await untouched, { ok: true, value: { body: Buffer.from('{"a":1}'), changed: false } });
  const refused = maskBody(Buffer.from('{"a":'), json, '', testMasker, 1 << 20);
  t.notOk(refused instanceof Promise);
  t.equal((await refused).ok, false, 'a JSON body that does not parse is still refused');
});
