/** Pure parts of the connector: path normalisation, credential resolution, frame counting, caller rules. */
import t from 'tap';
import type { Socket } from 'node:net';
import type { ConnectorContext, HttpConnectorConfig } from '@gatehouse/core';
import { parseTarget, resolveUpstreamAuth, withCredentialQuery, WsFrameCounter, maskKind } from '../src/index.js';
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
  for (const bad of ['', 'http://x/a', '*', '/a%2fb', '/a%5cb', '/a\\b', '/%zz', '/..', '/a/../../b', '/a%00b']) {
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

t.test('maskKind', async (t) => {
  t.equal(maskKind('application/json; charset=utf-8', false), 'json');
  t.equal(maskKind('application/problem+json', false), 'json');
  t.equal(maskKind('text/html', false), null);
  t.equal(maskKind('text/html', true), 'text');
  t.equal(maskKind('image/png', true), null);
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
