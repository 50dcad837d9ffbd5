/**
 * Hostile and broken callers against the MySQL connector: garbage instead of a handshake,
 * a malformed handshake response, half a handshake, a stalled TLS handshake, an oversized
 * packet, commands out of sequence, unsupported commands, and a reader too slow for its
 * result. Each is refused or timed out within `startup_timeout`, audited, and a normal
 * session keeps working throughout; the slow reader holds the gateway's memory bounded.
 */
import t from 'tap';
import { connect } from 'node:net';
import { readEvents } from '@gatehouse/audit';
import { startTestGateway, TOKENS } from '../../lib/gateway.js';
import { gatewayConn } from './my-env.js';
import { encode } from '@gatehouse/connector-mysql';
import { errText, query, RawClient } from './raw-client.js';

t.test('bad input', async (t) => {
  const tg = await startTestGateway({
    yaml: `
audit: { durability: strict }
connectors:
  - name: my
    type: mysql
    listen: 127.0.0.1:0
    upstream: { address: 127.0.0.1:3306, database: mysql, user: root }
    allow: [ { groups: [payments] } ]
    max_message_bytes: 65536
    startup_timeout: 1s
`,
  });
  t.teardown(() => tg.stop());
  const addr = tg.address('my');
  const stillWorks = async (what: string) => {
    const c = await gatewayConn(addr, TOKENS.billing);
    t.same((await c.query('SELECT 1 AS one'))[0], [{ one: 1 }], `a normal session works after ${what}`);
    await c.end();
  };

  t.test('garbage instead of a handshake response', async (t) => {
    const c = await RawClient.open(addr);
    t.ok(await c.next(), 'greeting');
    c.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    const e = await c.next();
    t.match(errText(e), /bad handshake/);
    c.close();
    const d = await RawClient.open(addr);
    await d.next();
    d.send(Buffer.alloc(40, 0x41), 1); // a packet, but not a handshake response
    t.match(errText(await d.next()), /malformed handshake response|pre-4.1/);
    d.close();
    await stillWorks('garbage');
  });

  t.test('bytes sent in clear behind the SSL request go to TLS, never read as MySQL packets', async (t) => {
    const c = await RawClient.open(addr);
    await c.next();
    const ssl = Buffer.alloc(32);
    ssl.writeUInt32LE(512 | 2048 | 32768 | (1 << 19), 0);
    ssl[8] = 45;
    const head = Buffer.alloc(32);
    head.writeUInt32LE(512 | 32768 | (1 << 19), 0);
    head[8] = 45;
    const pw = Buffer.from(TOKENS.billing + '\0');
    const response = Buffer.concat([head, Buffer.from('app\0'), Buffer.from([pw.length]), pw, Buffer.from('mysql_clear_password\0')]);
    // The SSL request and, in the same write, a clear-text handshake response (as if the upgrade were done).
    c.write(Buffer.concat([encode(ssl, 1), encode(response, 2)]));
    const got = await c.next(3000);
    t.notOk(got && got.payload[0] === 0x00, 'no login');
    const started = Date.now();
    while (!c.closed && Date.now() - started < 3000) await new Promise((r) => setTimeout(r, 50));
    t.ok(c.closed, 'closed by the gateway');
    await stillWorks('bytes behind the SSL request');
  });

  t.test('half a handshake and a stalled TLS handshake time out', async (t) => {
    const half = await RawClient.open(addr);
    await half.next();
    const tls = await RawClient.open(addr);
    await tls.next();
    const ssl = Buffer.alloc(32);
    ssl.writeUInt32LE(512 | 2048 | 32768 | (1 << 19), 0);
    ssl[8] = 45;
    tls.send(ssl, 1); // SSL request, then no ClientHello
    const started = Date.now();
    while ((!half.closed || !tls.closed) && Date.now() - started < 5000) await new Promise((r) => setTimeout(r, 50));
    t.ok(half.closed && tls.closed, 'both closed by the gateway');
    t.ok(Date.now() - started < 4000, 'within startup_timeout');
    await stillWorks('timeouts');
  });

  t.test('an oversized packet, a command out of sequence: closed; an unsupported command: refused, the session goes on', async (t) => {
    const big = await RawClient.login(addr, TOKENS.billing);
    big.send(query(`SELECT '${'x'.repeat(70_000)}'`));
    t.match(errText(await big.next()), /exceeds max_message_bytes/);
    t.equal(await big.next(1000), null);
    t.ok(big.closed);
    const seq = await RawClient.login(addr, TOKENS.billing);
    seq.send(query('SELECT 1'), 5);
    t.match(errText(await seq.next()), /out of sequence/);
    const unsupported = await RawClient.login(addr, TOKENS.billing);
    unsupported.send(Buffer.from([0x08])); // COM_SHUTDOWN
    t.match(errText(await unsupported.next()), /not supported through the gateway/);
    unsupported.send(query('SELECT 7'));
    const rest = await unsupported.until((p) => p.payload[0] === 0xfe && p.payload.length < 9);
    t.ok(
      rest.some((p) => p.payload.toString().includes('7')),
      'the session continues',
    );
    unsupported.close();
    // Raw bytes that never form a packet header on a logged-in session: just wait, then close.
    const s = connect(addr.port, addr.host);
    s.on('error', () => {});
    s.end(Buffer.from([0xff, 0xff]));
    await stillWorks('bad packets');
  });

  t.test('a slow reader of a large result holds the gateway memory bounded', async (t) => {
    const c = await RawClient.login(addr, TOKENS.billing);
    c.socket.pause();
    // ~100 MB of rows; the caller reads none of it for a while.
    c.send(query("SELECT REPEAT('x', 1000) FROM seq_1_to_100000"));
    const before = process.memoryUsage();
    await new Promise((r) => setTimeout(r, 2000));
    const during = process.memoryUsage();
    const grew = during.arrayBuffers + during.heapUsed - (before.arrayBuffers + before.heapUsed);
    t.ok(grew < 32 * 1024 * 1024, `gateway memory grew by ${(grew / 1048576).toFixed(1)} MiB while the caller did not read`);
    c.close();
    await stillWorks('a slow reader');
  });

  t.test('audit recorded the protocol errors', async (t) => {
    await new Promise((r) => setTimeout(r, 200));
    const errors = readEvents(tg.dataDir, { connector: 'my', kind: 'protocol.error', limit: 1000 }).map((e) => String(e.meta?.error));
    t.ok(
      errors.some((m) => /bad handshake/.test(m)),
      'garbage',
    );
    t.ok(
      errors.some((m) => /malformed handshake response|pre-4.1/.test(m)),
      'malformed handshake',
    );
    t.ok(errors.filter((m) => /startup timeout/.test(m)).length >= 2, 'half handshake and stalled TLS');
    t.ok(
      errors.some((m) => /exceeds max_message_bytes/.test(m)),
      'oversized',
    );
    t.ok(
      errors.some((m) => /out of sequence/.test(m)),
      'out of sequence',
    );
    const units = readEvents(tg.dataDir, { connector: 'my', kind: 'unit', limit: 1000 });
    t.ok(
      units.some((e) => e.decision?.rule === 'unsupported-command'),
      'the unsupported command is a refused unit',
    );
  });
});
