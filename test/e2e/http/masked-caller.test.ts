/**
 * A hostile masked caller end to end: a real gateway (real masking rules, policy, strict
 * audit, recordings) in front of nginx, driven by curl. Every attack either gets masked
 * data or a refusal, and afterwards no clear test value is anywhere in data_dir.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { readEvents } from '@gatehouse/audit';
import { filesUnder } from '../../lib/files.js';
import { connectorsYaml, connectorYaml, startTestGateway, TOKENS } from '../../lib/gateway.js';
import { startNginx } from './nginx.js';

const run = promisify(execFile);
const CARD = '4111111111111111';
const SSN = '078-05-1120';
/** Seen only by the exempt caller: proves the data_dir scan can find a clear value at all. */
const EXEMPT_CARD = '5555555555554444';
const customer = { id: 7, name: 'Ada', ssn: SSN, card: { number: CARD } };

t.test('masked caller against nginx: every body type and target trick masked or refused', async (t) => {
  const ndjson = `${JSON.stringify(customer)}\n${JSON.stringify({ id: 8, ssn: '123-45-6789', note: `card ${CARD}` })}\n`;
  const nginx = await startNginx(
    `
    location = /v1/export.ndjson { types { } default_type application/x-ndjson; }
    location = /v1/bom.json { types { } default_type application/json; }
    location = /v1/trailing.json { types { } default_type application/json; }
    location = /v1/blob.json { types { } default_type application/json; }
    location = /v1/page.html { types { } default_type text/html; }
    location = /v1/notes { types { } default_type ""; }
    location = /v1/events { types { } default_type text/event-stream; }
    location = /v1/moved { add_header X-Card "card ${CARD}"; return 302 /v1/cards/${CARD}; }
    location = /v1/echo {
      default_type application/json;
      return 200 '{"method":"$request_method","override":"$http_x_http_method_override","original":"$http_x_original_url","rewrite":"$http_x_rewrite_url","args":"$args"}';
    }
    location /v1/customers/ { default_type application/json; return 200 '{"ok":true}'; }
    `,
    {
      'v1/export.ndjson': ndjson,
      'v1/bom.json': Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify(customer))]),
      'v1/trailing.json': `${JSON.stringify(customer)}\n{"ssn":"${SSN}"}`,
      'v1/blob.json': gzipSync(JSON.stringify(customer)),
      'v1/page.html': `<html><body>card <b>${CARD}</b></body></html>`,
      'v1/notes': `card ${CARD}\n`,
      'v1/events': `event: charge\ndata: {"card":"${CARD}"}\n\n`,
    },
  );
  const tg = await startTestGateway({
    yaml: connectorsYaml([
      connectorYaml({
        type: 'http',
        name: 'billing-api',
        upstream: `{ url: ${nginx.url}, timeout: 5s }`,
        rules: ['{ name: no-customer-delete, match: { method: [DELETE], path: "/v1/customers/*" }, action: deny }'],
        masking: ['{ json: ["$..ssn"], with: last4, exempt: { groups: [analysts] } }', '{ detectors: [credit_card], with: last4, exempt: { groups: [analysts] } }'],
      }),
    ]),
  });
  t.teardown(async () => {
    await tg.stop();
    await nginx.stop();
  });
  const base = tg.url('billing-api');
  /** curl as the masked caller; `-D -` puts the head before the body. */
  const curl = async (...args: string[]) => {
    const { stdout } = await run('curl', ['-sS', '-D', '-', '-H', `Authorization: Bearer ${TOKENS.billing}`, ...args]);
    const split = stdout.indexOf('\r\n\r\n');
    const head = stdout.slice(0, split);
    return { status: Number(head.split(' ')[1]), head, body: stdout.slice(split + 4) };
  };

  await t.test('JSON lines and a BOM-prefixed document are masked', async (t) => {
    const nd = await curl(`${base}/v1/export.ndjson`);
    t.equal(nd.status, 200);
    const [a, b] = nd.body
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { ssn: string; note?: string; card: { number: string } });
    t.equal(a.ssn, '***-**-1120', 'JSON-path rule on line 1');
    t.equal(a.card.number, '************1111');
    t.equal(b.ssn, '***-**-6789', 'and on line 2');
    t.equal(b.note, 'card ************1111');
    const bom = await curl(`${base}/v1/bom.json`);
    t.equal(bom.status, 200);
    t.equal((JSON.parse(bom.body) as typeof customer).ssn, '***-**-1120');
  });

  await t.test('declared JSON that does not parse whole, or is gzip without Content-Encoding: 502', async (t) => {
    for (const p of ['/v1/trailing.json', '/v1/blob.json']) {
      const r = await curl(`${base}${p}`);
      t.equal(r.status, 502, p);
      t.match(r.head, /content-type: application\/problem\+json/i);
      t.notOk(r.body.includes(SSN) || r.body.includes(CARD), `${p}: nothing of the body`);
    }
  });

  await t.test('HTML, a body without Content-Type and an event stream: masked by the detectors', async (t) => {
    for (const p of ['/v1/page.html', '/v1/notes', '/v1/events']) {
      const r = await curl(`${base}${p}`);
      t.equal(r.status, 200, p);
      t.notOk(r.body.includes(CARD), `${p}: no clear card`);
      t.match(r.body, /\*{12}1111/, `${p}: masked in place`);
    }
  });

  await t.test('response headers: Location and custom headers masked', async (t) => {
    const r = await curl(`${base}/v1/moved`);
    t.equal(r.status, 302);
    t.match(r.head, /location: \S*\/v1\/cards\/\*{12}1111\r?$/im);
    t.match(r.head, /x-card: card \*{12}1111/i);
    t.notOk(r.head.includes(CARD));
  });

  await t.test('fragments and matrix parameters: 400', async (t) => {
    for (const target of ['/v1/customers/7#x', '/v1/customers;v=1/7', '/v1/x/..;/customers/7']) {
      const r = await curl('-X', 'DELETE', '--request-target', target, base);
      t.equal(r.status, 400, target);
    }
  });

  await t.test('method overrides are judged as the method they name; rewrite headers removed', async (t) => {
    const viaHeader = await curl('-X', 'POST', '-H', 'X-HTTP-Method-Override: DELETE', `${base}/v1/customers/7`);
    t.equal(viaHeader.status, 403);
    t.match(viaHeader.body, /no-customer-delete/);
    const viaQuery = await curl('-X', 'POST', `${base}/v1/customers/7?_method=DELETE`);
    t.equal(viaQuery.status, 403);
    const echo = await curl('-H', 'X-Original-URL: /v1/customers/7', '-H', 'X-Rewrite-URL: /v1/customers/7', `${base}/v1/echo`);
    t.equal(echo.status, 200);
    t.match(JSON.parse(echo.body), { original: '', rewrite: '' }, 'nginx never saw them');
  });

  await t.test('a percent-encoded card in the query is masked in the audit', async (t) => {
    const r = await curl(`${base}/v1/echo?card=%34%31%31%31${CARD.slice(4)}`);
    t.equal(r.status, 200);
    const exempt = await run('curl', ['-sS', '-H', `Authorization: Bearer ${TOKENS.analyst}`, `${base}/v1/echo?card=${EXEMPT_CARD}`]);
    t.match(exempt.stdout, new RegExp(EXEMPT_CARD), 'exempt caller: clear');
    const ev = readEvents(tg.dataDir, { connector: 'billing-api', limit: 1000 }).find((e) => e.kind === 'unit' && String(e.unit?.text).startsWith('GET /v1/echo?card=*'));
    t.ok(ev, 'the masked caller’s unit is in the audit');
    t.equal(ev?.unit?.text, 'GET /v1/echo?card=************1111');
  });

  await t.test('no clear test value anywhere in data_dir (audit database, recordings)', async (t) => {
    await tg.gw.stop(2_000); // flushes recordings and closes the audit store; tg.stop() later only removes the dir
    const all = filesUnder(tg.dataDir);
    t.ok(
      all.some((f) => f.path.includes('recordings')),
      'recordings were written',
    );
    t.ok(
      all.some((f) => f.bytes.includes(EXEMPT_CARD)),
      'control: a clear value is visible to this scan (the exempt caller’s)',
    );
    for (const secret of [CARD, SSN, '123-45-6789', `%34%31%31%31${CARD.slice(4)}`]) {
      const hits = all.filter((f) => f.bytes.includes(secret)).map((f) => f.path);
      t.same(hits, [], `${secret} in no file of data_dir`);
    }
  });
});
