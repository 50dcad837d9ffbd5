/**
 * The PostgreSQL connector end to end: a real gateway (static-token identity, policy,
 * masking, strict audit) in front of the local PostgreSQL, driven by psql and the pg driver.
 */
import t from 'tap';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { readEvents } from '@gatehouse/audit';
import { startTestGateway, TOKENS } from '../../lib/gateway.js';
import { connectorsYaml, dbUpstream, postgresConnector } from '../../lib/postgres.js';
import { createTestDb, direct, gatewayClient, psql } from './pg-env.js';

const CARD = '4111111111111111';
const EMAIL = 'ada@example.com';

t.test('postgres connector in front of the local PostgreSQL', async (t) => {
  const db = await createTestDb('pgc');
  const tg = await startTestGateway({
    env: { PG_PASSWORD: db.password },
    yaml: connectorsYaml([
      postgresConnector({
        upstream: dbUpstream(db, 'prefer'),
        rules: [
          '{ name: no-ddl, match: { statement: [drop, truncate] }, action: deny }',
          '{ name: bulk-write, match: { statement: [delete, update], where: absent }, action: review }',
        ],
        masking: ['{ columns: [card_number, account_no], with: last4, exempt: { groups: [analysts] } }', '{ detectors: [email], with: redact, exempt: { groups: [analysts] } }'],
      }),
    ]),
  });
  const work = mkdtempSync(join(tmpdir(), 'gh-pg-e2e-'));
  const clients: pg.Client[] = [];
  t.teardown(async () => {
    for (const c of clients) await c.end().catch(() => {});
    await tg.stop();
    await db.drop();
    rmSync(work, { recursive: true, force: true });
  });
  const addr = tg.address('pg');

  await direct(
    db,
    `CREATE TABLE cards (id int PRIMARY KEY, holder text, card_number text, account_no bigint, note text);
     INSERT INTO cards VALUES (1, 'Ada', '${CARD}', 9876543210, 'contact ${EMAIL} please'), (2, 'Bob', '5500000000000004', 1234567890, 'no pii here')`,
  );

  t.test('psql: multi-statement strings and scripts run; results masked per group', async (t) => {
    const multi = await psql(addr, TOKENS.billing, ['-c', 'SELECT 1; SELECT 2 AS two', '-c', 'SELECT card_number, note FROM cards ORDER BY id']);
    t.equal(multi.code, 0, multi.stderr);
    t.same(multi.stdout.trim().split('\n'), ['1', '2', '************1111|contact [REDACTED] please', '************0004|no pii here']);

    const clear = await psql(addr, TOKENS.analyst, ['-c', 'SELECT card_number, note FROM cards WHERE id = 1']);
    t.equal(clear.stdout.trim(), `${CARD}|contact ${EMAIL} please`, 'an exempt group sees clear values');

    const script = join(work, 'script.sql');
    writeFileSync(
      script,
      `CREATE TABLE notes (id serial PRIMARY KEY, body text);\nINSERT INTO notes (body) VALUES ('a'), ('b');\nUPDATE notes SET body = 'c' WHERE id = 2;\nSELECT string_agg(body, ',' ORDER BY id) FROM notes;\n`,
    );
    const ran = await psql(addr, TOKENS.billing, ['-f', script]);
    t.equal(ran.code, 0, ran.stderr);
    t.match(ran.stdout, /a,c/);
  });

  t.test('psql \\copy in works; \\copy out is refused for a masked caller, allowed for an exempt one', async (t) => {
    const input = join(work, 'in.csv');
    writeFileSync(input, `10,Cy,4000056655665556,1111222233,hello\n11,Di,378282246310005,4444555566,bye\n`);
    const copyIn = await psql(addr, TOKENS.billing, ['-c', `\\copy cards FROM '${input}' CSV`], { cwd: work });
    t.equal(copyIn.code, 0, copyIn.stderr);
    t.match(copyIn.stdout, /COPY 2/);
    t.equal((await direct(db, 'SELECT count(*)::int AS n FROM cards WHERE id >= 10')).rows[0].n, 2);

    const out = join(work, 'out.csv');
    const refused = await psql(addr, TOKENS.billing, ['-c', `\\copy cards TO '${out}' CSV`], { cwd: work });
    t.match(refused.stderr, /COPY TO STDOUT is refused while masking rules apply/);
    const allowed = await psql(addr, TOKENS.analyst, ['-c', `\\copy (SELECT id, card_number FROM cards WHERE id = 10) TO '${out}' CSV`], { cwd: work });
    t.equal(allowed.code, 0, allowed.stderr);
    t.equal(readFileSync(out, 'utf8'), '10,4000056655665556\n');
  });

  t.test('policy: DROP/TRUNCATE denied with 42501 naming the rule; the session continues', async (t) => {
    const r = await psql(addr, TOKENS.billing, ['-c', 'DROP TABLE cards', '-c', 'TRUNCATE cards', '-c', 'DELETE FROM cards', '-c', 'SELECT count(*) FROM cards']);
    t.match(r.stderr, /denied by rule "no-ddl"/);
    t.match(r.stderr, /requires approval by rule "bulk-write"/);
    t.equal(r.stdout.trim(), '4', 'the table is intact and the session answered the last query');

    const c = await gatewayClient(addr, TOKENS.billing);
    clients.push(c);
    const err = await c.query('DROP TABLE cards').then(
      () => null,
      (e: { code?: string; message: string }) => e,
    );
    t.equal(err?.code, '42501');
    t.match(err?.message, /no-ddl/);
    t.same((await c.query('SELECT count(*)::int AS n FROM cards')).rows, [{ n: 4 }]);
    // A refused statement inside a transaction block fails the block, as PostgreSQL would.
    await c.query('BEGIN');
    await c.query(`INSERT INTO cards VALUES (50, 'Tx', '0', 0, '')`);
    await t.rejects(c.query('TRUNCATE cards'), { code: '42501' });
    await t.rejects(c.query('SELECT 1'), { code: '25P02' });
    await c.query('ROLLBACK');
    t.equal((await direct(db, 'SELECT count(*)::int AS n FROM cards WHERE id = 50')).rows[0].n, 0, 'the block was rolled back');
    const del = await c.query('DELETE FROM cards WHERE id = 11');
    t.equal(del.rowCount, 1, 'DELETE with WHERE is allowed');
  });

  t.test('extended protocol: prepared statements, binary results, masking, refusal in a pipeline', async (t) => {
    const billing = await gatewayClient(addr, TOKENS.billing);
    const analyst = await gatewayClient(addr, TOKENS.analyst);
    clients.push(billing, analyst);
    const q = { name: 'by-id', text: 'SELECT id, card_number, account_no, note FROM cards WHERE id = $1', values: [1] };
    for (let i = 0; i < 3; i++) {
      const r = await billing.query(q);
      t.same(r.rows, [{ id: 1, card_number: '************1111', account_no: '******3210', note: 'contact [REDACTED] please' }], `prepared run ${i}`);
    }
    const bin = await billing.query<Record<'card_number' | 'account_no' | 'note', string | null>>({
      text: 'SELECT id, card_number, account_no, note FROM cards WHERE id = $1',
      values: [1],
      binary: true,
    } as pg.QueryConfig);
    t.equal(bin.rows[0].card_number, '************1111', 'binary text column masked');
    t.equal(bin.rows[0].account_no, null, 'binary int8 that cannot hold the mask becomes NULL');
    t.equal(bin.rows[0].note, 'contact [REDACTED] please');
    const binClear = await analyst.query<{ card_number: string }>({ text: 'SELECT card_number, account_no FROM cards WHERE id = $1', values: [1], binary: true } as pg.QueryConfig);
    t.equal(binClear.rows[0].card_number, CARD);
    const viaDirect = await direct(db, 'SELECT 1').then(async () => {
      const { default: pgmod } = await import('pg');
      const c = new pgmod.Client({ host: '127.0.0.1', port: 5432, user: db.role, database: db.database });
      await c.connect();
      try {
        return await c.query({ text: 'SELECT card_number, account_no FROM cards WHERE id = $1', values: [1], binary: true } as pg.QueryConfig);
      } finally {
        await c.end();
      }
    });
    t.same(binClear.rows, viaDirect.rows, 'an exempt caller gets exactly the upstream binary values');

    await t.rejects(billing.query({ name: 'bad', text: 'DROP TABLE cards' }), { code: '42501', message: /no-ddl/ });
    t.same((await billing.query({ name: 'bad', text: 'SELECT 1 AS one' })).rows, [{ one: 1 }], 'the name can be prepared again with an allowed text');
    t.same((await billing.query(q)).rows.length, 1, 'the session continues after a refused Parse');
    const upd = await billing.query('UPDATE cards SET holder = $1 WHERE id = $2', ['Ada L.', 1]);
    t.equal(upd.rowCount, 1);
  });

  t.test('cancel request reaches the right upstream backend', async (t) => {
    const c = await gatewayClient(addr, TOKENS.billing);
    clients.push(c);
    const keys = c as unknown as { processID: number; secretKey: number };
    const sleeping = c.query('SELECT pg_sleep(20)').then(
      () => null,
      (e: { code?: string }) => e.code,
    );
    // Send a CancelRequest with the gateway-issued key once the query is running upstream.
    for (let i = 0; i < 200; i++) {
      const active = await direct(db, `SELECT count(*)::int AS n FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(20)' AND state = 'active'`);
      if (active.rows[0].n > 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const pkt = Buffer.alloc(16);
    pkt.writeInt32BE(16, 0);
    pkt.writeInt32BE(80877102, 4);
    pkt.writeInt32BE(keys.processID, 8);
    pkt.writeInt32BE(keys.secretKey, 12);
    const s = netConnect(addr.port, addr.host);
    s.end(pkt);
    s.on('error', () => {});
    t.equal(await sleeping, '57014', 'query_canceled');
    t.same((await c.query('SELECT 1 AS one')).rows, [{ one: 1 }]);
  });

  t.test('direct TLS (PostgreSQL 17 style, ALPN postgresql) is accepted', async (t) => {
    const s = tlsConnect({ host: addr.host, port: addr.port, ALPNProtocols: ['postgresql'], rejectUnauthorized: false });
    await new Promise<void>((resolve, reject) => {
      s.once('secureConnect', resolve);
      s.once('error', reject);
    });
    t.equal(s.alpnProtocol, 'postgresql');
    const body = Buffer.from('user\0x\0database\0y\0\0');
    const startup = Buffer.alloc(8 + body.length);
    startup.writeInt32BE(8 + body.length, 0);
    startup.writeInt32BE(196608, 4);
    body.copy(startup, 8);
    s.write(startup);
    const reply = await new Promise<Buffer>((resolve) => s.once('data', resolve));
    t.equal(String.fromCharCode(reply[0]), 'R');
    t.equal(reply.readInt32BE(5), 3, 'AuthenticationCleartextPassword');
    s.destroy();
  });

  t.test('audit: one event per statement with decision, rows, params', async (t) => {
    const events = readEvents(tg.dataDir, { connector: 'pg', kind: 'unit', limit: 10_000 });
    const byText = (text: string) => events.filter((e) => e.unit?.text === text);
    const drop = byText('DROP TABLE cards');
    t.ok(drop.length >= 2);
    t.ok(drop.every((e) => e.decision?.action === 'deny' && e.decision.rule === 'no-ddl'));
    const bulk = byText('DELETE FROM cards');
    t.ok(bulk.length >= 1 && bulk.every((e) => e.decision?.action === 'deny' && e.decision.rule === 'bulk-write'));
    const sel = byText('SELECT card_number, note FROM cards ORDER BY id');
    t.equal(sel.length, 1);
    t.equal(sel[0].result?.rows, 2);
    t.equal(sel[0].decision?.action, 'allow');
    const multi = events.filter((e) => e.unit?.text === 'SELECT 1' || e.unit?.text === 'SELECT 2 AS two');
    t.ok(multi.length >= 2, 'each statement of a multi-statement string has its own event');
    const prepared = byText('SELECT id, card_number, account_no, note FROM cards WHERE id = $1');
    t.ok(prepared.length >= 5, 'one event per Execute');
    t.same(prepared[0].unit?.params, ['1']);
    const upd = byText('UPDATE cards SET holder = $1 WHERE id = $2');
    t.equal(upd[0].result?.rows, 1);
    t.same(upd[0].unit?.params, ['Ada L.', '1']);
    const sessions = readEvents(tg.dataDir, { connector: 'pg', kind: 'session.start', limit: 1000 });
    t.ok(sessions.length >= 5);
    t.ok(sessions.every((e) => e.meta?.claimedUser === 'anything'));
  });
});
