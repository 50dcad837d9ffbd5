/** Pure parts of the connector: path normalisation, credential resolution, frame counting, caller rules. */
import t from 'tap';
import type { Socket } from 'node:net';
import type { ConnectorContext } from '@gatehouse/core';
import type { HttpConnectorConfig } from '../src/config.js';
import { gzipSync, deflateSync } from 'node:zlib';
import {
  parseTarget,
  resolveUpstreamAuth,
  withCredentialQuery,
  WsFrameCounter,
  mediaType,
  overrideMethod,
  stripMethodParam,
  decodeForDetectors,
  maskUrlText,
  maskHeaderValue,
  LineMasker,
  hiddenFormat,
  maskJsonDocument,
} from '../src/index.js';
import { testMasker } from './harness.js';
import { bearerToken, newCallerConnection, sessionFor } from '../src/caller.js';

t.test('parseTarget', async (t) => {
  const ok = (u: string) => {
    const r = parseTarget(u);
    if (!r.ok) throw new Error(r.error.message);
    return r.value;
  };
  t.same(ok('/v1/a?x=1'), { path: '/v1/a', wirePath: '/v1/a', query: 'x=1' });
  t.equal(ok('/v1//customers/./7').path, '/v1/customers/7');
  t.equal(ok('/v1/%63ustomers/7').path, '/v1/customers/7');
  t.equal(ok('/v1/a/b/../c').wirePath, '/v1/a/c');
  t.equal(ok('/v1/items:batchGet/%20x').wirePath, '/v1/items:batchGet/%20x', 'pchar kept, space re-encoded');
  t.equal(ok('/v1/a/').path, '/v1/a/', 'trailing slash kept');
  for (const bad of [
    '',
    'http://x/a',
    '*',
    '/a%2fb',
    '/a%5cb',
    '/a\\b',
    '/%zz',
    '/..',
    '/a/../../b',
    '/a%00b',
    // fragment: servers disagree on whether it ends the path
    '/v1/customers#/7',
    '/a?x=1#frag',
    '/a#',
    // matrix parameters, raw or encoded: servlet containers route `/a;x/b` as `/a/b`, `/p/..;/admin` as `/admin`
    '/v1/customers;x=1/7',
    '/public/..;/admin',
    '/v1/customers%3bx/7',
    '/a;',
  ]) {
    t.notOk(parseTarget(bad).ok, `refused: ${JSON.stringify(bad)}`);
  }
});

t.test('upstream credentials', async (t) => {
  const r = (credential: object, headers?: Record<string, string>) => resolveUpstreamAuth({ url: 'http://x', timeout: 1, credential, headers } as never);
  const bearer = r({ type: 'bearer', token: 'abc' }, { 'X-A': '1' });
  t.same(bearer.ok && bearer.value, { headers: ['x-a', '1', 'authorization', 'Bearer abc'], query: '' });
  const basic = r({ type: 'basic', username: 'u', password: 'p' });
  t.same(basic.ok && basic.value.headers, ['authorization', `Basic ${Buffer.from('u:p').toString('base64')}`]);
  const header = r({ type: 'header', name: 'X-Api-Key', value: 'k' });
  t.same(header.ok && header.value.headers, ['x-api-key', 'k']);
  const query = r({ type: 'query', name: 'api key', value: 'v&1' });
  t.equal(query.ok && query.value.query, 'api%20key=v%261');
  t.notOk(r({ type: 'bearer' }).ok, 'missing token refused at start');
  t.notOk(r({ type: 'header', name: 'x', value: 'a\r\nInjected: 1' }).ok, 'header injection refused');
  t.notOk(resolveUpstreamAuth({ url: 'http://x', timeout: 1, headers: { 'Bad Name': 'v' } }).ok);
  t.equal(withCredentialQuery('a=1&key=caller', 'key=real'), 'a=1&key=real', 'caller cannot choose the credential parameter');
  t.equal(withCredentialQuery('', 'key=real'), 'key=real');
  t.equal(withCredentialQuery('a=1', ''), 'a=1');
});

t.test('bearer token parsing', async (t) => {
  t.equal(bearerToken('Bearer abc.def-ghi_~+/='), 'abc.def-ghi_~+/=');
  t.equal(bearerToken('bearer   abc'), 'abc');
  t.equal(bearerToken('Basic abc'), null);
  t.equal(bearerToken('Bearer'), null);
  t.equal(bearerToken('Bearer a b'), null);
  t.equal(bearerToken(undefined), null);
});

t.test('clear-text tokens from a remote peer are refused before verification', async (t) => {
  let opened = 0;
  const ctx = { openSession: () => (opened++, null as never) } as unknown as ConnectorContext<HttpConnectorConfig>;
  const remote = newCallerConnection({ remoteAddress: '10.1.2.3', remotePort: 5 } as Socket, false);
  const r = sessionFor(remote, 'tok-0123456789abcdef', ctx, () => {});
  t.ok('ok' in r && !r.ok && r.error.code === 'auth.cleartext');
  t.equal(opened, 0, 'no session, the token is not even looked at');
  t.notOk(newCallerConnection({ remoteAddress: '10.1.2.3' } as Socket, true).cleartextRemote, 'TLS is fine');
  t.notOk(newCallerConnection({ remoteAddress: '::ffff:127.0.0.1' } as Socket, false).cleartextRemote, 'loopback is fine');
});

t.test('mediaType: masking kind and the character space the detectors read', async (t) => {
  t.same(mediaType('application/json; charset=utf-8'), { kind: 'json', charset: 'utf-8', space: 'utf8' });
  t.equal(mediaType('application/problem+json').kind, 'json');
  for (const nd of ['application/x-ndjson', 'application/jsonl', 'application/json-seq', 'application/geo+json-seq']) t.equal(mediaType(nd).kind, 'ndjson', nd);
  t.equal(mediaType('text/event-stream').kind, 'sse');
  t.equal(mediaType('text/html; charset="ISO-8859-1"'.toLowerCase()).space, 'latin1');
  t.equal(mediaType('application/xml').kind, 'text');
  t.equal(mediaType('').kind, 'opaque', 'no Content-Type');
  t.equal(mediaType('multipart/mixed; boundary=x').kind, 'opaque');
  t.equal(mediaType('application/json; charset=utf-16').space, null, 'JSON in UTF-16: unreadable, refused');
  t.equal(mediaType('application/json; charset=iso-8859-1').space, null, 'JSON is UTF-8 only');
  t.equal(mediaType('text/plain; charset=utf-16le').space, null);
  t.equal(mediaType('text/plain; charset=shift_jis').space, null);
  t.equal(mediaType('text/plain').space, 'latin1');
  t.equal(mediaType('text/plain; charset=utf-8').space, 'utf8');
});

t.test('method override: every source, PHP name mangling, conflicts', async (t) => {
  const m = (headers: string[], query = '') => {
    const r = overrideMethod(headers, query);
    return r.ok ? r.value : `error: ${r.error.message}`;
  };
  t.equal(m(['Host', 'x']), null);
  t.equal(m(['X-HTTP-Method-Override', 'delete']), 'DELETE');
  t.equal(m(['X-HTTP-Method', 'PUT']), 'PUT');
  t.equal(m(['x-method-override', ' patch ']), 'PATCH');
  t.equal(m(['X_HTTP_Method_Override', 'DELETE']), 'DELETE', 'underscore spelling (CGI maps it to the same variable)');
  t.equal(m([], 'a=1&_method=DELETE'), 'DELETE');
  t.equal(m([], '%5Fmethod=delete'), 'DELETE', 'encoded name');
  t.equal(m([], '.method=DELETE'), 'DELETE', 'PHP turns . into _');
  t.equal(m([], '_METHOD=DELETE'), 'DELETE');
  t.equal(m([], 'a=1;_method=DELETE'), 'DELETE', '; as a separator');
  t.equal(m([], '_method%5B%5D=DELETE'), 'DELETE', 'array form');
  t.equal(m([], 'my_method=DELETE&methods=x'), null, 'other names are not overrides');
  t.equal(m(['X-HTTP-Method-Override', 'DELETE'], '_method=delete'), 'DELETE', 'agreeing sources');
  t.match(m(['X-HTTP-Method-Override', 'DELETE'], '_method=PUT'), /^error: conflicting/);
  t.match(m(['X-HTTP-Method-Override', 'DELETE, PUT']), /^error: conflicting/);
  t.match(m(['X-HTTP-Method', 'DEL ETE']), /^error: malformed/);
  t.equal(stripMethodParam('a=1&_method=DELETE&b=2'), 'a=1&b=2');
  t.equal(stripMethodParam('a=1;%5Fmethod=DELETE&b=2'), 'b=2', 'a pair hiding _method behind ; goes whole');
  t.equal(stripMethodParam('a=1&b=2'), 'a=1&b=2');
});

const CARD = '4111111111111111';

t.test('detectors see URL-encoded values', async (t) => {
  t.equal(decodeForDetectors('card=%34%31%311111111111111'), `card=${CARD}`);
  t.equal(decodeForDetectors('c=4111+1111+1111+1111'), 'c=4111 1111 1111 1111');
  t.equal(decodeForDetectors('%ff%34%31%zz'), '\xff41%zz', 'invalid UTF-8 decodes byte-wise, malformed % stays');
  t.equal(maskUrlText(testMasker, 'card=%34111111111111111'), 'card=************1111');
  t.equal(maskUrlText(testMasker, 'plain=1&x=%20'), 'plain=1&x=%20', 'nothing found: unchanged');
  t.equal(maskHeaderValue(testMasker, `/cards/${CARD}`), '/cards/************1111');
  t.equal(maskHeaderValue(testMasker, '/c/%34111111111111111?n=%0d%0aX-Injected:%201'), '/c/************1111?n=%0D%0AX-Injected: 1', 'CR/LF from decoding re-encoded');
  t.equal(maskHeaderValue(testMasker, 'max-age=60'), 'max-age=60');
});

t.test('LineMasker: lines masked as they complete, held line bounded', async (t) => {
  const lm = new LineMasker(testMasker, 64);
  const a = lm.push(Buffer.from(`data: ${CARD.slice(0, 8)}`));
  t.same(a, Buffer.alloc(0), 'an unfinished line is held: half a number is not sent');
  const b = lm.push(Buffer.from(`${CARD.slice(8)}\n\ndata: x`));
  t.same(b, Buffer.from('data: ************1111\n\n'));
  t.same(lm.end(), Buffer.from('data: x'));
  const long = new LineMasker(testMasker, 16);
  t.match(long.push(Buffer.alloc(40, 0x61)), { error: /exceeds max_body_bytes/ });
  t.match(new LineMasker(testMasker, 64).push(Buffer.from('a\x00b\n')), { error: /binary/ });
});

t.test('hiddenFormat: compressed or UTF-16 bytes under a text label', async (t) => {
  t.equal(hiddenFormat(gzipSync('{"a":1}')), 'gzip');
  t.equal(hiddenFormat(deflateSync('{"a":1}')), 'zlib');
  t.equal(hiddenFormat(Buffer.from('\ufeff{"a":1}', 'utf16le')), 'UTF-16');
  t.equal(hiddenFormat(Buffer.from('x^ plain text that merely starts like a zlib header')), null);
  t.equal(hiddenFormat(Buffer.from('{"a":1}')), null);
});

t.test('maskJsonDocument: strict parse, duplicate keys collapsed', async (t) => {
  const r = (s: string) => {
    const x = maskJsonDocument(s, testMasker);
    return x.ok ? x.value : 'error';
  };
  t.equal(r('{"a":1}'), null, 'nothing to mask: upstream bytes kept');
  t.equal(r('  '), null);
  t.equal(r('{"a":1} trailing'), 'error');
  t.equal(r('{"a":1}{"b":2}'), 'error');
  t.equal(r(`"${CARD}"`), '"************1111"', 'top-level string');
  // A first-wins parser would read the first ssn, which the last-wins JSON.parse never showed to masking.
  t.equal(r(`{"note":"${CARD}","note":"x"}`), '{"note":"x"}');
  t.equal(r('{"ssn":"078-05-1120","ssn":null}'), '{"ssn":"[redacted]"}');
  t.equal(r('{"a":"x:y","b":{"c":"\\":"}}'), null, 'colons inside strings are not members');
});

t.test('WebSocket frame counter', async (t) => {
  const frame = (fin: boolean, opcode: number, len: number, masked: boolean) => {
    const hdr: number[] = [(fin ? 0x80 : 0) | opcode];
    const m = masked ? 0x80 : 0;
    if (len < 126) hdr.push(m | len);
    else if (len < 65536) hdr.push(m | 126, len >> 8, len & 255);
    else hdr.push(m | 127, 0, 0, 0, 0, (len >>> 24) & 255, (len >> 16) & 255, (len >> 8) & 255, len & 255);
    return Buffer.concat([Buffer.from(hdr), Buffer.alloc(masked ? 4 : 0), Buffer.alloc(len, 0x81)]);
  };
  const stream = Buffer.concat([
    frame(true, 1, 5, true),
    frame(false, 2, 200, true), // fragmented message…
    frame(true, 9, 0, true), // …with a ping in between
    frame(true, 0, 70_000, true), // …ends here
    frame(true, 8, 2, false),
  ]);
  const c = new WsFrameCounter();
  // Feed in awkward 3-byte slices: headers split across chunks must still parse.
  for (let i = 0; i < stream.length; i += 3) c.feed(stream.subarray(i, i + 3));
  t.equal(c.messages, 2);
  t.equal(c.controlFrames, 2);
  t.equal(c.bytes, stream.length);
  t.notOk(c.broken);
  const bad = new WsFrameCounter();
  bad.feed(Buffer.from([0x83, 0x00]));
  t.ok(bad.broken, 'reserved opcode stops counting');
});
