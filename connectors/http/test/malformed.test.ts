import t from 'tap';
import { kinds, rawExchange as raw, startHarness, startUpstream, TOKEN } from './harness.js';

t.test('malformed and smuggling requests are refused with 400 and never forwarded', async (t) => {
  const up = await startUpstream((req, res) => {
    req.resume();
    req.on('end', () => res.end('reached'));
  });
  const h = await startHarness({ upstream: up.url });
  t.teardown(async () => {
    await h.stop();
    await up.close();
  });
  const a = `Authorization: Bearer ${TOKEN}\r\nHost: x\r\n`;
  const cases: Record<string, string> = {
    'content-length and transfer-encoding': `POST /a HTTP/1.1\r\n${a}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
    'duplicate conflicting content-length': `POST /a HTTP/1.1\r\n${a}Content-Length: 4\r\nContent-Length: 5\r\n\r\nabcde`,
    'obs-fold header continuation': `GET /a HTTP/1.1\r\n${a}X-Folded: one\r\n two\r\n\r\n`,
    'control byte in header value': `GET /a HTTP/1.1\r\n${a}X-Bad: a\x01b\r\n\r\n`,
    'space before colon': `GET /a HTTP/1.1\r\n${a}X-Bad : v\r\n\r\n`,
    'bad chunk size': `POST /a HTTP/1.1\r\n${a}Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n`,
    'transfer-encoding not ending in chunked': `POST /a HTTP/1.1\r\n${a}Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n`,
    'absolute-form target': `GET http://evil.example/a HTTP/1.1\r\n${a}\r\n`,
  };
  for (const [name, bytes] of Object.entries(cases)) {
    const answer = await raw(h.port, bytes);
    t.match(answer, /^HTTP\/1\.1 400 /, name);
    t.notMatch(answer, /reached/, `${name}: not forwarded`);
  }
  t.equal(up.seen.length, 0, 'the upstream never saw any of them');
  t.ok(kinds(h.events).filter((k) => k === 'protocol.error').length >= Object.keys(cases).length, 'each refusal audited');

  // The gateway keeps serving everyone else.
  const ok = await raw(h.port, `GET /fine HTTP/1.1\r\n${a}Connection: close\r\n\r\n`);
  t.match(ok, /^HTTP\/1\.1 200 /);
  t.match(ok, /reached/);
});
