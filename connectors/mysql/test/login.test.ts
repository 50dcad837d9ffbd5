/**
 * The connection phase on both sides. Upstream: the gateway's login against scripted servers
 * (caching_sha2_password full authentication with the RSA key exchange, an auth switch from
 * mysql_native_password to caching_sha2's fast path, a refused password, `tls.mode: require`
 * against a server without TLS). Caller side: clear text off loopback and clients that cannot
 * switch authentication plugins are refused before any password is read.
 */
import t from 'tap';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { loadTls, ServerTls } from '@gatehouse/connector-kit';
import { Session, silentLogger, type SessionServices } from '@gatehouse/core';
import { MemoryAudit } from '@gatehouse/connector-kit/testing';
import { compileMasking } from '@gatehouse/masking';
import { compilePolicy } from '@gatehouse/policy';
import { Catalog } from '../src/catalog.js';
import { handleClient } from '../src/client-connection.js';
import type { MysqlConnectorConfig } from '../src/config.js';
import { encode, errPayload, okPayload, PacketFramer, type Packet } from '../src/packet.js';
import { buildGreeting, CAP, GATEWAY_CAPABILITIES, nativeScramble, readHandshakeResponse, rsaDecryptPassword, sha2Scramble } from '../src/protocol.js';
import { connectUpstream, type UpstreamTarget } from '../src/upstream.js';

/** Close a server with its open connections (server.close() alone waits for them). */
function track(server: Server): void {
  const open = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    open.add(s);
    s.on('close', () => open.delete(s));
  });
  const close = server.close.bind(server);
  server.close = (cb?: (err?: Error) => void) => {
    for (const s of open) s.destroy();
    return close(cb);
  };
}

const SCRAMBLE = Buffer.from('abcdefghijklmnopqrst');
const SCRAMBLE2 = Buffer.from('ABCDEFGHIJKLMNOPQRST');
const PASSWORD = 'upstream-secret';

/** A scripted server: greets, then hands each packet to `on` with a reply function. */
async function fakeServer(
  plugin: string,
  on: (p: Packet, send: (payload: Buffer) => void, n: number) => void,
  caps = GATEWAY_CAPABILITIES & ~CAP.SSL,
): Promise<{ server: Server; address: string }> {
  const server = createServer((s: Socket) => {
    s.write(encode(buildGreeting({ serverVersion: '8.0.36-fake', connectionId: 7, scramble: SCRAMBLE, capabilities: caps, charset: 45, status: 2, plugin }), 0));
    const f = new PacketFramer(1 << 20);
    let n = 0;
    s.on('data', (c: Buffer) => {
      f.push(c);
      let p: Packet | null;
      while ((p = f.next())) {
        const seq = p.seq;
        on({ ...p, payload: Buffer.from(p.payload) }, (payload) => s.write(encode(payload, seq + 1)), n++);
      }
    });
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  track(server);
  return { server, address: `127.0.0.1:${(server.address() as AddressInfo).port}` };
}

const target = (address: string, mode: UpstreamTarget['tls']['mode'] = 'prefer'): UpstreamTarget => ({ address, database: 'shop', user: 'app', password: PASSWORD, tls: { mode } });
const opts = { callerCapabilities: GATEWAY_CAPABILITIES, charset: 45, timeoutMs: 3000 };

t.test('upstream caching_sha2_password: fast-path proof, then full authentication with the RSA key exchange', async (t) => {
  const keys = generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
  let decrypted: string | null = null;
  const { server, address } = await fakeServer('caching_sha2_password', (p, send, n) => {
    if (n === 0) {
      const r = readHandshakeResponse(p.payload);
      t.same([r.user, r.database, r.plugin], ['app', 'shop', 'caching_sha2_password']);
      t.same(r.authData, sha2Scramble(PASSWORD, SCRAMBLE), 'the SHA-256 scramble');
      send(Buffer.from([0x01, 0x04]));
    } else if (n === 1) {
      t.same(p.payload, Buffer.from([0x02]), 'asks for the public key');
      send(Buffer.concat([Buffer.from([0x01]), Buffer.from(keys.publicKey)]));
    } else {
      decrypted = rsaDecryptPassword(p.payload, SCRAMBLE, keys.privateKey);
      send(okPayload(2));
    }
  });
  t.teardown(() => server.close());
  const up = await connectUpstream(target(address), opts);
  t.ok(up.ok, up.ok ? '' : up.error.message);
  t.equal(decrypted, PASSWORD, 'the password, RSA-encrypted');
  if (up.ok) up.value.socket.destroy();
});

t.test('upstream caching_sha2_password over TLS (tls.mode: require): the full path sends the password inside TLS', async (t) => {
  const { TLSSocket } = await import('node:tls');
  const dir = mkdtempSync(join(tmpdir(), 'gh-my-up-tls-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const material = await loadTls(undefined, { dataDir: dir, connector: 'up', development: true });
  let clear: string | null = null;
  let secured = false;
  const server = createServer((s: Socket) => {
    s.write(
      encode(
        buildGreeting({
          serverVersion: '8.0.36-fake',
          connectionId: 8,
          scramble: SCRAMBLE,
          capabilities: GATEWAY_CAPABILITIES,
          charset: 45,
          status: 2,
          plugin: 'caching_sha2_password',
        }),
        0,
      ),
    );
    const f = new PacketFramer(1 << 20);
    let n = 0;
    const onPacket = (sock: Socket, p: Packet) => {
      const reply = (payload: Buffer) => sock.write(encode(payload, p.seq + 1));
      if (n++ === 0) {
        t.equal(p.payload.length, 32, 'an SSL request first');
        s.removeAllListeners('data');
        s.pause();
        const hello = f.detach(); // the ClientHello may have come with the SSL request
        if (hello.length) s.unshift(hello);
        const tls = new TLSSocket(s, { isServer: true, cert: material.cert, key: material.key });
        secured = true;
        const g = new PacketFramer(1 << 20);
        tls.on('data', (c: Buffer) => {
          g.push(c);
          let q: Packet | null;
          while ((q = g.next())) onPacket(tls, { seq: q.seq, parts: q.parts, payload: Buffer.from(q.payload), raw: null });
        });
        tls.on('error', () => {});
        return;
      }
      if (n === 2) {
        t.same(readHandshakeResponse(p.payload).authData, sha2Scramble(PASSWORD, SCRAMBLE));
        reply(Buffer.from([0x01, 0x04]));
      } else {
        clear = p.payload.toString('utf8', 0, p.payload.length - 1);
        reply(okPayload(2));
      }
    };
    s.on('data', (c: Buffer) => {
      f.push(c);
      let p: Packet | null;
      while ((p = f.next())) onPacket(s, { seq: p.seq, parts: p.parts, payload: Buffer.from(p.payload), raw: null });
    });
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  track(server);
  t.teardown(() => server.close());
  const up = await connectUpstream(target(`127.0.0.1:${(server.address() as AddressInfo).port}`, 'require'), opts);
  t.ok(up.ok, up.ok ? '' : up.error.message);
  t.ok(secured);
  t.equal(clear, PASSWORD, 'the password in clear, inside TLS');
  if (up.ok) {
    t.equal(up.value.tls, true);
    up.value.socket.destroy();
  }
});

t.test('upstream auth switch: mysql_native_password greeting, switched to caching_sha2_password (fast path)', async (t) => {
  const { server, address } = await fakeServer('mysql_native_password', (p, send, n) => {
    if (n === 0) {
      t.same(readHandshakeResponse(p.payload).authData, nativeScramble(PASSWORD, SCRAMBLE));
      send(Buffer.concat([Buffer.from([0xfe]), Buffer.from('caching_sha2_password\0'), SCRAMBLE2, Buffer.from([0])]));
    } else {
      t.same(p.payload, sha2Scramble(PASSWORD, SCRAMBLE2), 'answers the new scramble');
      send(Buffer.from([0x01, 0x03]));
      send(okPayload(2));
    }
  });
  t.teardown(() => server.close());
  const up = await connectUpstream(target(address), opts);
  t.ok(up.ok, up.ok ? '' : up.error.message);
  if (up.ok) {
    t.equal(up.value.serverVersion, '8.0.36-fake');
    up.value.socket.destroy();
  }
});

t.test('upstream refusals: a wrong password, an unknown plugin, tls.mode require without TLS', async (t) => {
  const { server, address } = await fakeServer('mysql_native_password', (_p, send) => send(errPayload(1045, '28000', "Access denied for user 'app'")));
  t.teardown(() => server.close());
  const bad = await connectUpstream(target(address), opts);
  t.same(bad.ok ? null : [bad.error.code, bad.error.sqlstate], [1045, '28000']);
  const req = await connectUpstream(target(address, 'require'), opts);
  t.match(req.ok ? '' : req.error.message, /does not offer TLS/);
  const { server: s2, address: a2 } = await fakeServer('mysql_native_password', (_p, send) =>
    send(Buffer.concat([Buffer.from([0xfe]), Buffer.from('client_ed25519\0'), SCRAMBLE2])),
  );
  t.teardown(() => s2.close());
  const ed = await connectUpstream(target(a2), opts);
  t.match(ed.ok ? '' : ed.error.message, /client_ed25519, which the gateway does not speak/);
});

/** A listener running handleClient against the local MariaDB (root), as if callers came from `peerAddress`. */
async function gatewayListener(t: Parameters<Parameters<typeof tap.test>[0]>[0], peerAddress?: string) {
  const dir = mkdtempSync(join(tmpdir(), 'gh-my-login-'));
  const material = await loadTls(undefined, { dataDir: dir, connector: 'my', development: true });
  const tls = new ServerTls(material, { handshakeTimeoutMs: 3000 });
  const keys = generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
  const policy = compilePolicy([], { connectorType: 'mysql' });
  const masking = compileMasking([]);
  if (!policy.ok || !masking.ok) throw new Error('compile');
  const audit = new MemoryAudit();
  const services: SessionServices = {
    connector: { name: 'my', type: 'mysql' },
    allow: [{ subjects: ['svc:test'] }],
    audit,
    authenticator: {
      authenticate: async (tok) =>
        tok === 'good-token-0123456789'
          ? { ok: true as const, value: { subject: 'svc:test', issuer: 'static', groups: [], claims: {} } }
          : { ok: false as const, error: { code: 'auth.invalid', message: 'invalid token' } },
    },
    policy: policy.value,
    masking: masking.value,
    recorder: null,
    metrics: null,
    logger: silentLogger,
  };
  const upstream: UpstreamTarget = { address: '127.0.0.1:3306', database: 'mysql', user: 'root', password: '', tls: { mode: 'disable' } };
  const config = {
    name: 'my',
    type: 'mysql',
    listen: '127.0.0.1:0',
    allow: [],
    rules: [],
    masking: [],
    upstream: { ...upstream, by_group: [] },
    max_message_bytes: 1 << 24,
    max_result_message_bytes: 1 << 28,
    max_prepared_statements: 100,
    on_parse_error: 'deny',
    masking_mode: 'restricted',
    startup_timeout: 3000,
  } as unknown as MysqlConnectorConfig;
  const server = createServer({ pauseOnConnect: true }, (s) => {
    void handleClient(s, {
      config,
      tls,
      keys,
      upstream,
      byGroup: [],
      catalog: new Catalog(upstream, 3000, silentLogger),
      log: silentLogger,
      serverVersion: () => '8.0.36-test',
      onServerVersion: () => {},
      connectionId: () => 1,
      openSession: (peer) => new Session(services, peer),
      onRelay: () => {},
      onClose: () => {},
      ...(peerAddress ? { peerAddress } : {}),
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  track(server);
  t.teardown(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { port: (server.address() as AddressInfo).port, audit };
}
import type tap from 'tap';

t.test('off loopback, a clear-text connection is refused before any password is read; TLS works', async (t) => {
  const { port, audit } = await gatewayListener(t, '203.0.113.9');
  await t.rejects(mysql.createConnection({ host: '127.0.0.1', port, user: 'app', password: 'good-token-0123456789' }), { errno: 3159, message: /TLS is required/ });
  const c = await mysql.createConnection({ host: '127.0.0.1', port, user: 'app', password: 'good-token-0123456789', ssl: { rejectUnauthorized: false } });
  t.same((await c.query('SELECT 1 AS one'))[0], [{ one: 1 }]);
  await c.end();
  t.ok(
    audit.events.some((e) => e.kind === 'protocol.error' && /TLS is required/.test(String(e.meta?.error))),
    'audited',
  );
});

t.test('a client that cannot switch plugins (mysql_native_password only) gets an error saying how to connect', async (t) => {
  const { port } = await gatewayListener(t);
  const { connect } = await import('node:net');
  const s = connect(port, '127.0.0.1');
  const f = new PacketFramer(1 << 20);
  const got: Packet[] = [];
  s.on('data', (c: Buffer) => {
    f.push(c);
    let p: Packet | null;
    while ((p = f.next())) got.push({ ...p, payload: Buffer.from(p.payload) });
  });
  s.on('error', () => {});
  while (got.length < 1) await new Promise((r) => setTimeout(r, 10));
  const head = Buffer.alloc(32);
  head.writeUInt32LE(CAP.PROTOCOL_41 | CAP.SECURE_CONNECTION | CAP.LONG_PASSWORD, 0);
  head[8] = 45;
  const auth = nativeScramble('good-token-0123456789', SCRAMBLE);
  s.write(encode(Buffer.concat([head, Buffer.from('app\0'), Buffer.from([auth.length]), auth]), 1));
  const deadline = Date.now() + 3000;
  while (got.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  s.destroy();
  const e = got[1]?.payload;
  t.equal(e?.[0], 0xff);
  t.equal(e?.readUInt16LE(1), 1251);
  t.match(e?.toString('utf8', 9), /mysql_native_password.*caching_sha2_password over TLS/);
});
