/**
 * The HTTP connector end to end: a real gateway (identity, policy, masking, strict audit)
 * in front of a real nginx serving a third-party-shaped JSON API, driven by curl and fetch.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { readEvents } from '@gatehouse/audit';
import { connectorsYaml, connectorYaml, startTestGateway, TOKENS } from '../../lib/gateway.js';
import { startNginx } from './nginx.js';

const run = promisify(execFile);
const CARD = '4111111111111111';
const customer = { id: 7, name: 'Ada', email: 'ada@example.com', card: { number: CARD }, ssn: '078-05-1120' };

t.test('http connector in front of nginx', async (t) => {
  const json = JSON.stringify(customer);
  const nginx = await startNginx(
    `
    gzip on; gzip_types application/json; gzip_min_length 0;
    location = /v1/whoami {
      default_type application/json;
      return 200 '{"authorization":"$http_authorization","xff":"$http_x_forwarded_for","args":"$args"}';
    }
    location /v1/customers/ { default_type application/json; try_files /customer.json =404; }
    location = /v1/refunds { default_type application/json; return 201 '{"refund":"ok"}'; }
    location = /v1/static.json.gz { types { } default_type application/json; add_header Content-Encoding gzip; }
    `,
    { 'customer.json': json, 'v1/static.json.gz': gzipSync(json) },
  );
  const tg = await startTestGateway({
    env: { BILLING_API_KEY: 'sk_live_upstream_key_123456' },
    yaml: connectorsYaml([
      connectorYaml({
        type: 'http',
        name: 'billing-api',
        upstream: `{ url: ${nginx.url}, headers: { Authorization: "Bearer \${env:BILLING_API_KEY}" }, timeout: 5s }`,
        rules: [
          '{ name: no-customer-delete, match: { method: [DELETE], path: "/v1/customers/*" }, action: deny }',
          "{ name: big-refunds, when: 'request.json.amount > 1000', match: { method: [POST], path: /v1/refunds }, action: review }",
          `{ name: contractors-read-only, when: 'identity.groups.exists(g, g == "contractors") && request.method != "GET"', action: deny }`,
        ],
        masking: ['{ json: ["$.card.number", "$..ssn"], with: last4, exempt: { groups: [analysts] } }', '{ detectors: [email], with: redact, exempt: { groups: [analysts] } }'],
      }),
    ]),
  });
  t.teardown(async () => {
    await tg.stop();
    await nginx.stop();
  });
  const base = tg.url('billing-api');
  const bearer = (tok: string) => ({ authorization: `Bearer ${tok}` });

  await t.test('credential injection seen by nginx; caller token never forwarded', async (t) => {
    const { stdout } = await run('curl', ['-sS', '-H', `Authorization: Bearer ${TOKENS.billing}`, '-H', 'X-Forwarded-For: 6.6.6.6', `${base}/v1/whoami?x=1`]);
    const seen = JSON.parse(stdout) as Record<string, string>;
    t.equal(seen.authorization, 'Bearer sk_live_upstream_key_123456');
    t.equal(seen.xff, '127.0.0.1');
    t.equal(seen.args, 'x=1');
    t.notOk(stdout.includes(TOKENS.billing));
  });

  await t.test('401 without a token, 403 for a caller outside the allow list', async (t) => {
    const r = await fetch(`${base}/v1/whoami`);
    t.equal(r.status, 401);
    t.equal(r.headers.get('www-authenticate'), 'Bearer error="invalid_token"');
    t.equal(((await r.json()) as { status: number }).status, 401);
    const nobody = await fetch(`${base}/v1/whoami`, { headers: bearer(TOKENS.nobody) });
    t.equal(nobody.status, 401, 'identity not allowed on this connector');
    await nobody.text();
  });

  await t.test('gzip JSON from nginx is masked, re-encoded, Content-Length fixed', async (t) => {
    // -D - puts the response head before the (decoded) body on stdout.
    const out = (await run('curl', ['-sS', '--compressed', '-D', '-', '-H', `Authorization: Bearer ${TOKENS.billing}`, `${base}/v1/customers/7`])).stdout;
    const split = out.indexOf('\r\n\r\n');
    const head = out.slice(0, split);
    const stdout = out.slice(split + 4);
    t.match(head, /content-encoding: gzip/i, 'still gzip on the wire');
    t.match(head, /content-length: \d+/i);
    const got = JSON.parse(stdout) as typeof customer;
    t.equal(got.card.number, '************1111');
    t.equal(got.ssn, '***-**-1120', 'last4 keeps separators');
    t.not(got.email, 'ada@example.com');
    t.notOk(stdout.includes(CARD));
    const pre = (await fetch(`${base}/v1/static.json.gz`, { headers: bearer(TOKENS.billing) })).json() as Promise<typeof customer>;
    t.equal((await pre).card.number, '************1111', 'pre-compressed static file masked too');
    const exempt = (await (await fetch(`${base}/v1/customers/7`, { headers: bearer(TOKENS.analyst) })).json()) as typeof customer;
    t.equal(exempt.card.number, CARD, 'exempt group sees clear values');
  });

  await t.test('deny and review rules: 403 problem+json naming the rule', async (t) => {
    const del = await fetch(`${base}/v1/customers/7`, { method: 'DELETE', headers: bearer(TOKENS.billing) });
    t.equal(del.status, 403);
    t.match(del.headers.get('content-type'), /application\/problem\+json/);
    t.match(await del.json(), { status: 403, rule: 'no-customer-delete' });
    const post = (amount: number, tok: string = TOKENS.billing) =>
      fetch(`${base}/v1/refunds`, { method: 'POST', headers: { ...bearer(tok), 'content-type': 'application/json' }, body: JSON.stringify({ amount, email: 'bob@example.com' }) });
    const big = await post(5000);
    t.equal(big.status, 403);
    t.match(await big.json(), { rule: 'big-refunds' });
    const small = await post(10);
    t.equal(small.status, 201);
    t.same(await small.json(), { refund: 'ok' });
    const contractor = await post(10, TOKENS.contractor);
    t.equal(contractor.status, 403);
    t.match(await contractor.json(), { rule: 'contractors-read-only' });
  });

  await t.test('audit trail: one unit per request, headers and body masked, no secrets', async (t) => {
    const events = readEvents(tg.dataDir, { connector: 'billing-api', limit: 1000 });
    const unitsByText = events.filter((e) => e.kind === 'unit');
    const del = unitsByText.find((e) => e.unit?.text === 'DELETE /v1/customers/7')!;
    t.same(del.decision, { action: 'deny', rule: 'no-customer-delete' });
    t.equal(del.result?.status, 403);
    const refunds = unitsByText.filter((e) => e.unit?.text === 'POST /v1/refunds');
    t.equal(refunds.length, 3);
    const okRefund = refunds.find((e) => e.result?.status === 201)!;
    const attrs = okRefund.unit?.attributes as { upstream: string; headers: Record<string, string>; body: string };
    t.equal(attrs.upstream, nginx.url);
    t.equal(attrs.headers.authorization, '[removed]');
    t.notMatch(attrs.body, /bob@example\.com/, 'request body sample masked by the detectors');
    t.match(attrs.body, /"amount":10/);
    const all = JSON.stringify(events);
    for (const secret of [TOKENS.billing, TOKENS.analyst, 'sk_live_upstream_key_123456']) t.notOk(all.includes(secret), 'no token or upstream key in the audit');
    t.ok(
      events.some((e) => e.kind === 'auth.failure'),
      'the refused caller is audited',
    );
  });
});
