/**
 * Bad input against the PostgreSQL connector: garbage, an oversized message, a half-sent
 * startup, a client that never finishes TLS, a wrong token. Each is answered or closed
 * within `startup_timeout`, audited, and a normal session keeps working throughout.
 */
import t from 'tap';
import { connect, type Socket } from 'node:net';
import { serialize } from 'pg-protocol';
import { readEvents } from '@gatehouse/audit';
import { startTestGateway, TOKENS } from '../../lib/gateway.js';
import { connectorsYaml, dbUpstream, postgresConnector } from '../../lib/postgres.js';
import { createTestDb, gatewayClient } from './pg-env.js';

/** Everything the gateway sends until it closes the socket (bounded by a generous guard). */
function collect(s: Socket, guardMs = 15_000): Promise<{ data: Buffer; closed: boolean }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const guard = setTimeout(() => {
      s.destroy();
      resolve({ data: Buffer.concat(chunks), closed: false });
    }, guardMs);
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(guard);
      resolve({ data: Buffer.concat(chunks), closed: true });
    });
  });
}

function open(addr: { host: string; port: number }): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(addr.port, addr.host, () => resolve(s));
    s.once('error', reject);
  });
}

/** The well-formed messages come from pg-protocol (the pg driver's own encoder); the bad ones are made here. */
const startupMessage = () => serialize.startup({ user: 'someone', database: 'x' });

t.test('bad input is refused and others keep working', async (t) => {
  const db = await createTestDb('pgbad');
  const tg = await startTestGateway({
    yaml: connectorsYaml([postgresConnector({ extra: ['startup_timeout: 1s', 'max_message_bytes: 65536'], upstream: dbUpstream(db, 'disable', { password: false }) })]),
  });
  const good = await gatewayClient(tg.address('pg'), TOKENS.billing);
  t.teardown(async () => {
    await good.end().catch(() => {});
    await tg.stop();
    await db.drop();
  });
  const addr = tg.address('pg');
  const stillWorks = async (label: string) => t.same((await good.query('SELECT $1::text AS v', [label])).rows, [{ v: label }], `session still works after ${label}`);

  t.test('garbage bytes get a FATAL error and a close', async (t) => {
    const s = await open(addr);
    const done = collect(s);
    s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    const r = await done;
    t.ok(r.closed);
    t.equal(String.fromCharCode(r.data[0]), 'E');
    t.match(r.data.toString('latin1'), /bad startup packet length/);
    await stillWorks('garbage');
  });

  t.test('an oversized message after login is refused with 54000', async (t) => {
    const s = await open(addr);
    const done = collect(s);
    s.write(startupMessage());
    await new Promise((r) => s.once('data', r)); // AuthenticationCleartextPassword
    s.write(serialize.password(TOKENS.billing));
    await new Promise<void>((resolve) => {
      const onData = (c: Buffer) => {
        if (c.includes(Buffer.from([0x5a, 0, 0, 0, 5]))) {
          s.off('data', onData);
          resolve();
        }
      };
      s.on('data', onData);
    });
    const huge = Buffer.alloc(5);
    huge[0] = 0x51;
    huge.writeInt32BE(100 * 1024 * 1024, 1);
    s.write(huge);
    const r = await done;
    t.ok(r.closed);
    t.match(r.data.toString('latin1'), /54000/);
    t.match(r.data.toString('latin1'), /exceeds max_message_bytes/);
    await stillWorks('oversized');
  });

  t.test('a half-sent startup is closed by startup_timeout', async (t) => {
    const s = await open(addr);
    const done = collect(s);
    s.write(Buffer.from([0, 0, 0, 40, 0, 3])); // promises 40 bytes, sends 6
    const r = await done;
    t.ok(r.closed, 'closed by the gateway, not by the guard');
    await stillWorks('half startup');
  });

  t.test('a client that never finishes TLS is closed by startup_timeout', async (t) => {
    const s = await open(addr);
    const done = collect(s);
    s.write(serialize.requestSsl());
    const r = await done;
    t.ok(r.closed);
    t.equal(r.data.toString('latin1', 0, 1), 'S', 'TLS was offered');
    await stillWorks('stalled TLS');
  });

  t.test('data pipelined after SSLRequest is refused (CVE-2021-23214)', async (t) => {
    const s = await open(addr);
    const done = collect(s);
    s.write(Buffer.concat([serialize.requestSsl(), startupMessage()]));
    const r = await done;
    t.ok(r.closed);
    t.match(r.data.toString('latin1'), /bytes were sent behind the TLS upgrade request/);
  });

  t.test('a wrong token gets 28P01 and no upstream session', async (t) => {
    await t.rejects(gatewayClient(addr, 'not-a-valid-token-at-all'), { code: '28P01' });
    await t.rejects(gatewayClient(addr, TOKENS.nobody), { code: '28P01', message: /may not use connector/ });
    await stillWorks('bad tokens');
  });

  t.test('audit recorded the protocol errors and auth failures', async (t) => {
    const errors = readEvents(tg.dataDir, { connector: 'pg', kind: 'protocol.error', limit: 1000 });
    const texts = errors.map((e) => String(e.meta?.error));
    t.ok(
      texts.some((m) => /bad startup packet length/.test(m)),
      'garbage',
    );
    t.ok(
      texts.some((m) => /exceeds max_message_bytes/.test(m)),
      'oversized',
    );
    t.ok(texts.filter((m) => /startup timeout/.test(m)).length >= 2, 'half startup and stalled TLS');
    const auth = readEvents(tg.dataDir, { connector: 'pg', kind: 'auth.failure', limit: 1000 });
    t.equal(auth.length, 2);
  });
});
