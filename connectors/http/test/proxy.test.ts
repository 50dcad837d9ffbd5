import t from 'tap';
import { request as httpRequest, Agent } from 'node:http';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startHarness, startUpstream, TOKEN, OTHER_TOKEN, kinds, units, until } from './harness.js';

const run = promisify(execFile);

t.test('caller auth, credential injection, header hygiene', async (t) => {
  const up = await startUpstream((req, res) => {
    res.setHeader('content-type', 'application/json');
    res.setHeader('connection', 'keep-alive, x-hop');
    res.setHeader('x-hop', 'must-not-pass');
    res.end(JSON.stringify({ ok: true, path: req.url }));
  });
  const h = await startHarness({
    upstream: up.url + '/base',
    extraYaml: `      headers: { X-Static: "static-1" }
      credential: { type: bearer, token: "upstream-secret-token" }`,
  });
  t.teardown(async () => {
    await h.stop();
    await up.close();
  });

  await t.test('missing token: 401 problem+json with WWW-Authenticate', async (t) => {
    const r = await fetch(`${h.base}/v1/things`);
    t.equal(r.status, 401);
    t.equal(r.headers.get('www-authenticate'), 'Bearer error="invalid_token"');
    t.match(r.headers.get('content-type'), /^application\/problem\+json/);
    const body = (await r.json()) as Record<string, unknown>;
    t.equal(body.status, 401);
    t.equal(body.title, 'Unauthorized');
    t.equal(up.seen.length, 0, 'nothing reached the upstream');
  });

  await t.test('invalid token: 401 naming the reason, audited as auth.failure', async (t) => {
    const r = await fetch(`${h.base}/v1/things`, { headers: { authorization: 'Bearer not-a-known-token-xx' } });
    t.equal(r.status, 401);
    const body = (await r.json()) as Record<string, unknown>;
    t.equal(body.detail, 'token not recognised');
    t.ok(kinds(h.events).includes('auth.failure'));
    t.equal(up.seen.length, 0);
  });

  await t.test('valid token: forwarded with the upstream credential, caller token removed', async (t) => {
    const r = await fetch(`${h.base}/v1/things?a=1`, {
      headers: { authorization: `Bearer ${TOKEN}`, 'x-forwarded-for': '6.6.6.6', 'x-custom': 'kept', cookie: 'sid=secret-cookie' },
    });
    t.equal(r.status, 200);
    t.same(await r.json(), { ok: true, path: '/base/v1/things?a=1' });
    t.equal(r.headers.get('x-hop'), null, 'header named by upstream Connection is dropped');
    const seen = up.seen.at(-1)!;
    t.equal(seen.headers.authorization, 'Bearer upstream-secret-token');
    t.notOk(JSON.stringify(seen.rawHeaders).includes(TOKEN), 'caller token never forwarded');
    t.equal(seen.headers['x-static'], 'static-1');
    t.equal(seen.headers['x-custom'], 'kept');
    t.equal(seen.headers['x-forwarded-for'], '127.0.0.1', 'caller-supplied X-Forwarded-For replaced');
    t.equal(seen.headers['x-forwarded-proto'], 'http');
    t.equal(seen.headers['x-forwarded-host'], `${h.host}:${h.port}`);
    await until(() => units(h.events).length >= 1);
    const ev = units(h.events).at(-1)!;
    t.equal(ev.unit?.text, 'GET /v1/things?a=1');
    t.equal(ev.result?.status, 200);
    t.equal(ev.identity?.subject, 'svc:billing');
    const attrs = ev.unit?.attributes as { method: string; path: string; upstream: string; headers: Record<string, string> };
    t.equal(attrs.method, 'GET');
    t.equal(attrs.path, '/v1/things');
    t.equal(attrs.upstream, up.url);
    t.equal(attrs.headers.authorization, '[removed]');
    t.equal(attrs.headers.cookie, '[removed]');
    t.equal(attrs.headers['x-custom'], 'kept');
    t.notOk(JSON.stringify(h.events).includes(TOKEN), 'token never in the audit');
    t.notOk(JSON.stringify(h.events).includes('secret-cookie'), 'cookie never in the audit');
  });

  await t.test('curl: keep-alive requests share one session; a new token opens another', async (t) => {
    const before = h.events.filter((e) => e.kind === 'session.start').length;
    const url = `${h.base}/v1/k`;
    const { stdout } = await run('curl', [
      '-s',
      '-w',
      '%{http_code}\n',
      '-H',
      `Authorization: Bearer ${TOKEN}`,
      url,
      '-o',
      '/dev/null',
      url,
      '-o',
      '/dev/null',
      url,
      '-o',
      '/dev/null',
    ]);
    t.same(stdout.trim().split('\n'), ['200', '200', '200']);
    await until(() => h.events.filter((e) => e.kind === 'session.end').length >= 1);
    t.equal(h.events.filter((e) => e.kind === 'session.start').length - before, 1, 'one session for three keep-alive requests');

    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    t.teardown(() => agent.destroy());
    const get = (token: string) =>
      new Promise<number>((resolve, reject) => {
        const req = httpRequest(`${h.base}/v1/x`, { agent, headers: { authorization: `Bearer ${token}` } }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', reject);
        req.end();
      });
    const starts = h.events.filter((e) => e.kind === 'session.start').length;
    t.equal(await get(TOKEN), 200);
    t.equal(await get(OTHER_TOKEN), 200);
    t.equal(await get(OTHER_TOKEN), 200);
    t.equal(h.events.filter((e) => e.kind === 'session.start').length - starts, 2, 'token change on one connection opens a second session');
    const last = units(h.events).at(-1)!;
    t.equal(last.identity?.subject, 'svc:other', 'unit recorded under the identity of its own token');
    t.ok(h.events.some((e) => e.kind === 'session.end' && (e.meta as Record<string, unknown>).reason === 'token changed'));
  });

  await t.test('path is normalised before policy and forwarding', async (t) => {
    const { stdout } = await run('curl', ['-s', '--path-as-is', '-H', `Authorization: Bearer ${TOKEN}`, `${h.base}/v1//a/./b/%63/../c`]);
    t.same(JSON.parse(stdout), { ok: true, path: '/base/v1/a/b/c' });
    const r = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--path-as-is', '-H', `Authorization: Bearer ${TOKEN}`, `${h.base}/v1/a%2fb`]);
    t.equal(r.stdout, '400', 'encoded slash refused');
    const r2 = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--path-as-is', '-H', `Authorization: Bearer ${TOKEN}`, `${h.base}/../etc`]);
    t.equal(r2.stdout, '400', 'escape above root refused');
  });
});

t.test('policy: deny and review answer 403 problem naming the rule, never forwarded', async (t) => {
  const up = await startUpstream((_req, res) => res.end('{}'));
  const h = await startHarness({
    upstream: up.url,
    extraYaml: `    rules:
      - { name: no-delete, match: { method: [DELETE] }, action: deny }
      - { name: big-refunds, when: 'request.json.amount > 1000', action: review }`,
    decide: (unit) => {
      if (unit.match.method === 'DELETE' && String(unit.match.path).startsWith('/v1/customers/')) return { action: 'deny', rule: 'no-delete' };
      const json = unit.context.json as { amount?: number } | null;
      if (json && typeof json.amount === 'number' && json.amount > 1000) return { action: 'review', rule: 'big-refunds' };
      return { action: 'allow' };
    },
  });
  t.teardown(async () => {
    await h.stop();
    await up.close();
  });
  const auth = { authorization: `Bearer ${TOKEN}` };

  const del = await fetch(`${h.base}/v1/customers/7`, { method: 'DELETE', headers: auth });
  t.equal(del.status, 403);
  t.match(del.headers.get('content-type'), /application\/problem\+json/);
  const p = (await del.json()) as Record<string, unknown>;
  t.equal(p.rule, 'no-delete');
  t.equal(p.type, 'urn:gatehouse:problem:policy-denied');
  t.match(p.detail, /no-delete/);

  // The `when` rule makes the connector buffer the body so the policy sees request.json.
  const big = await fetch(`${h.base}/v1/refunds`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ amount: 5000, card: '4111111111111111' }),
  });
  t.equal(big.status, 403);
  const pb = (await big.json()) as Record<string, unknown>;
  t.equal(pb.rule, 'big-refunds');
  t.match(pb.detail, /approval/);

  const small = await fetch(`${h.base}/v1/refunds`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ amount: 5 }) });
  t.equal(small.status, 200);
  await small.text();
  t.equal(up.seen.length, 1, 'only the allowed request reached the upstream');
  t.equal(up.seen[0].bytes, JSON.stringify({ amount: 5 }).length, 'buffered body forwarded whole');

  await until(() => units(h.events).length >= 3);
  const [e1, e2, e3] = units(h.events);
  t.same(e1.decision, { action: 'deny', rule: 'no-delete' });
  t.equal(e1.result?.status, 403);
  t.same(e2.decision, { action: 'deny', rule: 'big-refunds' });
  t.equal((e2.unit?.attributes as Record<string, unknown>).body, JSON.stringify({ amount: 5000, card: '4111111111111111' }), 'body sample kept (no masker active)');
  t.same(e3.decision, { action: 'allow' });
});

t.test('audit failure fails closed', async (t) => {
  const up = await startUpstream((_req, res) => res.end('{"fine":true}'));
  const h = await startHarness({ upstream: up.url });
  t.teardown(async () => {
    await h.stop();
    await up.close();
  });
  const auth = { authorization: `Bearer ${TOKEN}` };
  const ok = await fetch(`${h.base}/a`, { headers: auth });
  t.equal(ok.status, 200);
  await ok.text();
  h.breakAudit();
  const r = await fetch(`${h.base}/a`, { headers: auth });
  t.equal(r.status, 503);
  t.equal(((await r.json()) as Record<string, unknown>).type, 'urn:gatehouse:problem:audit-unavailable');
  t.equal(up.seen.length, 1, 'nothing forwarded while the audit log is down');
});

t.test('upstream down and upstream timeout', async (t) => {
  const up = await startUpstream((req, res) => {
    if (req.url === '/slow') return; // never answers
    res.end('x');
  });
  const h = await startHarness({ upstream: up.url, extraYaml: '      timeout: 300ms' });
  const auth = { authorization: `Bearer ${TOKEN}` };
  const slow = await fetch(`${h.base}/slow`, { headers: auth });
  t.equal(slow.status, 504);
  t.equal(((await slow.json()) as Record<string, unknown>).title, 'Gateway Timeout');
  await up.close();
  const down = await fetch(`${h.base}/x`, { headers: auth });
  t.equal(down.status, 502);
  await down.text();
  await until(() => units(h.events).length >= 2);
  t.same(
    units(h.events).map((e) => e.result?.status),
    [504, 502],
  );
  await h.stop();
});
