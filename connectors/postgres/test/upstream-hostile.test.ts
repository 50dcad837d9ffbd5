/**
 * What the upstream login refuses from a server that does not follow the protocol — cases a
 * real PostgreSQL never produces, so they are played by a scripted TCP peer. (The honest
 * paths run against a real PostgreSQL 15 in test/e2e/postgres/upstream-auth.test.ts.)
 */
import t from 'tap';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { connectUpstream, type UpstreamTarget } from '../src/upstream.js';

const PASSWORD = 'hostile-test-password-1234';

function auth(code: number, data: Buffer = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(9 + data.length);
  b[0] = 0x52; // 'R'
  b.writeInt32BE(8 + data.length, 1);
  b.writeInt32BE(code, 5);
  data.copy(b, 9);
  return b;
}

/**
 * A one-connection server: `script` gets each complete message the gateway sends (the
 * untyped startup packet first) and answers. Resolves with everything received once the
 * gateway closes.
 */
async function scripted(t: { teardown(fn: () => Promise<void>): void }, script: (n: number, msg: Buffer, s: Socket) => void) {
  let received = Buffer.alloc(0);
  let resolveClosed: (b: Buffer) => void = () => {};
  const closed = new Promise<Buffer>((r) => (resolveClosed = r));
  const server = createServer((s) => {
    let buf = Buffer.alloc(0);
    let n = 0;
    s.on('data', (c: Buffer) => {
      received = Buffer.concat([received, c]);
      buf = Buffer.concat([buf, c]);
      for (;;) {
        const head = n === 0 ? 0 : 1;
        if (buf.length < head + 4) return;
        const len = buf.readInt32BE(head) + head;
        if (buf.length < len) return;
        const msg = buf.subarray(0, len);
        buf = buf.subarray(len);
        script(n++, msg, s);
      }
    });
    s.on('error', () => {});
    s.on('close', () => resolveClosed(received));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const target: UpstreamTarget = {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    database: 'db',
    user: 'app',
    password: PASSWORD,
    sslmode: 'disable',
    scramCache: new Map(),
  };
  return { target, closed };
}

t.test('AuthenticationOk before the SCRAM server signature is refused', async (t) => {
  const { target, closed } = await scripted(t, (n, _msg, s) => {
    if (n === 0) s.write(auth(10, Buffer.from('SCRAM-SHA-256\0\0')));
    else s.write(auth(0)); // skips SASLContinue/SASLFinal: never proves it knows the password
  });
  const r = await connectUpstream(target, {}, 5_000);
  t.equal(r.ok, false);
  if (!r.ok) {
    t.equal(r.error.sqlstate, '28000');
    t.match(r.error.message, /before completing SCRAM/);
  }
  await closed;
});

t.test('a switch to a cleartext password request in the middle of SCRAM is refused, password unsent', async (t) => {
  const { target, closed } = await scripted(t, (n, _msg, s) => {
    if (n === 0) s.write(auth(10, Buffer.from('SCRAM-SHA-256\0\0')));
    else if (n === 1) s.write(auth(3));
  });
  const r = await connectUpstream(target, {}, 5_000);
  t.equal(r.ok, false);
  if (!r.ok) t.equal(r.error.sqlstate, '08P01');
  const seen = await closed;
  t.notOk(seen.includes(Buffer.from(PASSWORD)), 'the password never went on the wire');
});

t.test('a malformed SASL mechanism list is a protocol error and the socket is closed', async (t) => {
  const { target, closed } = await scripted(t, (n, _msg, s) => {
    if (n === 0) s.write(auth(10, Buffer.from('SCRAM-SHA-256'))); // no terminators
  });
  const r = await connectUpstream(target, {}, 5_000);
  t.equal(r.ok, false);
  if (!r.ok) t.equal(r.error.sqlstate, '08P01');
  await closed; // resolves only because the gateway closed its end
  t.pass('upstream socket closed');
});

t.test('a server that never answers the login times out with a clear error', async (t) => {
  const { target, closed } = await scripted(t, () => {});
  const r = await connectUpstream(target, {}, 300);
  t.equal(r.ok, false);
  if (!r.ok) t.match(r.error.message, /timed out/);
  await closed;
});
