/**
 * A hostile caller against the request side: targets the upstream routes differently from
 * the policy (fragments, matrix parameters, rewrite headers), method overrides, and values
 * hidden from the audit's detectors by URL encoding.
 */
import t from 'tap';
import type { Decision, Unit } from '@gatehouse/core';
import { parseConfig } from '@gatehouse/core';
import { rawExchange as raw, startHarness, startUpstream, testMasker, TOKEN, units, until } from './harness.js';
import { httpConnector } from '../src/index.js';

const CARD = '4111111111111111';
const auth = { authorization: `Bearer ${TOKEN}` };

/** The connector's rules, as the policy engine would apply them to these tests' units. */
function policy(unit: Unit): Decision {
  const path = String(unit.match.path);
  if (unit.match.method === 'DELETE' && path.startsWith('/v1/customers/')) return { action: 'deny', rule: 'no-customer-delete' };
  if (path.startsWith('/admin')) return { action: 'deny', rule: 'no-admin' };
  return { action: 'allow' };
}

async function setup(t: { teardown(fn: () => Promise<void>): void }, extraYaml = '', masked = false) {
  const up = await startUpstream((req, res) => {
    req.resume();
    req.on('end', () => res.end('reached'));
  });
  const h = await startHarness({ upstream: up.url, decide: policy, extraYaml, ...(masked ? { masker: testMasker } : {}) });
  t.teardown(async () => {
    await h.stop();
    await up.close();
  });
  return { up, h };
}

t.test('fragments and matrix parameters are refused with 400 before policy and upstream', async (t) => {
  const { up, h } = await setup(t);
  const a = `Authorization: Bearer ${TOKEN}\r\nHost: x\r\nConnection: close\r\n`;
  // curl and fetch strip fragments: raw bytes are what a hostile client sends.
  for (const target of ['/v1/customers#/7', '/v1/public?x=1#/../admin', '/v1/customers;jsessionid=1/7', '/public/..;/admin', '/v1/customers%3B/7']) {
    const answer = await raw(h.port, `DELETE ${target} HTTP/1.1\r\n${a}\r\n`);
    t.match(answer, /^HTTP\/1\.1 400 /, target);
    t.notMatch(answer, /reached/);
  }
  t.equal(up.seen.length, 0, 'the upstream saw none of them');
  t.ok(h.events.filter((e) => e.kind === 'protocol.error').length >= 5, 'each refusal audited');
});

t.test('method_override: judge — a POST naming DELETE is judged as DELETE too', async (t) => {
  const { up, h } = await setup(t);
  const post = (path: string, headers: Record<string, string> = {}) => fetch(`${h.base}${path}`, { method: 'POST', headers: { ...auth, ...headers } });
  for (const [name, r] of [
    ['X-HTTP-Method-Override', await post('/v1/customers/7', { 'x-http-method-override': 'DELETE' })],
    ['X-HTTP-Method', await post('/v1/customers/7', { 'x-http-method': 'delete' })],
    ['X-Method-Override', await post('/v1/customers/7', { 'x-method-override': 'DELETE' })],
    ['_method', await post('/v1/customers/7?_method=DELETE')],
    ['encoded _method', await post('/v1/customers/7?%5Fmethod=DELETE')],
  ] as const) {
    t.equal(r.status, 403, name);
    t.equal(((await r.json()) as { rule: string }).rule, 'no-customer-delete', `${name}: judged by the DELETE rule`);
  }
  const conflict = await post('/v1/customers/7?_method=PUT', { 'x-http-method-override': 'DELETE' });
  t.equal(conflict.status, 400, 'overrides that disagree are refused');
  await conflict.text();
  t.equal(up.seen.length, 0);
  const fine = await post('/v1/customers/7', { 'x-http-method-override': 'PATCH' });
  t.equal(fine.status, 200, 'an allowed override passes');
  await fine.text();
  t.equal(up.seen[0].headers['x-http-method-override'], 'PATCH', 'judged, so forwarded for the upstream to honour');
  await until(() => units(h.events).length >= 6);
  const first = units(h.events)[0];
  t.equal(first.unit?.text, 'POST /v1/customers/7', 'the audit keeps the method sent…');
  t.equal((first.unit?.attributes as Record<string, unknown>).method_override, 'DELETE', '…and the one it named');
});

t.test('method_override: strip — overrides never reach the upstream; the request is judged as sent', async (t) => {
  const { up, h } = await setup(t, '    method_override: strip');
  const r = await fetch(`${h.base}/v1/customers/7?a=1&_method=DELETE&b=2`, {
    method: 'POST',
    headers: { ...auth, 'x-http-method-override': 'DELETE', 'X-HTTP-Method': 'DELETE', 'x-method-override': 'DELETE', x_http_method_override: 'DELETE' },
  });
  t.equal(r.status, 200);
  await r.text();
  const seen = up.seen[0];
  t.equal(seen.url, '/v1/customers/7?a=1&b=2', '_method removed from the query');
  t.notOk(
    seen.rawHeaders.some((n, i) => i % 2 === 0 && /method/i.test(n)),
    'every override header removed',
  );
  t.equal(seen.method, 'POST');
});

t.test('X-Original-URL and X-Rewrite-URL never reach the upstream', async (t) => {
  const { up, h } = await setup(t);
  const r = await fetch(`${h.base}/v1/public`, { headers: { ...auth, 'x-original-url': '/admin/users', 'x-rewrite-url': '/admin/users', X_Original_URL: '/admin' } });
  t.equal(r.status, 200);
  await r.text();
  const names = up.seen[0].rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
  t.notOk(
    names.some((n) => /original|rewrite/.test(n)),
    `removed (upstream saw: ${names.join(', ')})`,
  );
});

t.test('audit of a masked caller: query decoded before the detectors, path and headers masked', async (t) => {
  // A rule matching on a header puts its value into the unit (`header.x-tenant`): masked there too.
  const { h } = await setup(t, "    rules:\n      - { name: tenant, match: { header.x-tenant: ['t-*'] }, action: allow }", true);
  const encoded = '%34%31%31%31' + CARD.slice(4); // %34 = "4"
  const r = await fetch(`${h.base}/v1/pay/${CARD}?card=${encoded}&plus=4111+1111+1111+1111`, {
    headers: { ...auth, referer: `http://x/?c=${encoded}`, 'x-note': CARD, 'x-tenant': `t-${encoded}` },
  });
  t.equal(r.status, 200);
  await r.text();
  const post = await fetch(`${h.base}/v1/form`, { method: 'POST', headers: { ...auth, 'content-type': 'application/x-www-form-urlencoded' }, body: `card=${encoded}` });
  await post.text();
  const json = await fetch(`${h.base}/v1/json`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: `{"n":${CARD},"${CARD}":1}` });
  await json.text();
  await until(() => units(h.events).length >= 3);
  const all = JSON.stringify(h.events);
  t.notOk(all.includes(CARD), 'no clear card number anywhere in the audit events');
  t.notOk(all.includes(encoded), 'nor its percent-encoded form');
  t.notOk(all.includes('4111+1111+1111+1111'), 'nor its form-encoded spaced form');
  const [get] = units(h.events);
  t.match(get.unit?.text, /^GET \/v1\/pay\/\*{12}1111\?card=\*{12}1111/);
  t.match((get.unit?.attributes as Record<string, string>).query, /card=\*{12}1111/);
  t.equal((get.unit?.attributes as Record<string, string>)['header.x-tenant'], 't-************1111', 'matched header value masked');
});

t.test('config: the new keys are validated, mask_text_bodies is refused at load', async (t) => {
  const load = (extra: string) =>
    parseConfig(
      `data_dir: /tmp/x\nadmin: { listen: 127.0.0.1:0 }\nconnectors:\n  - name: api\n    type: http\n    listen: 127.0.0.1:0\n    upstream: { url: http://127.0.0.1:1 }\n${extra}`,
      't.yaml',
      { env: {}, connectors: [httpConnector] },
    );
  const defaults = load('');
  t.ok(defaults.ok);
  if (defaults.ok) t.match(defaults.value.connectors[0], { unknown_content: 'detectors', method_override: 'judge' }, 'defaults');
  t.ok(load('    unknown_content: refuse\n    method_override: strip\n').ok);
  for (const bad of ['    mask_text_bodies: true\n', '    mask_text_bodies: false\n', '    unknown_content: pass\n', '    method_override: allow\n']) {
    const r = load(bad);
    t.notOk(r.ok, `refused: ${bad.trim()}`);
  }
  const old = load('    mask_text_bodies: true\n');
  t.match(!old.ok && old.error.message, /mask_text_bodies/, 'the error names the removed key');
});
