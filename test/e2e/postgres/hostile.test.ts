/**
 * A hostile, masked caller against a real gateway and the local PostgreSQL: every way we
 * know to get a masked value back in clear, or to run a statement without an audit event.
 * Each attack is a case; docs/security.md lists them with what each proves.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { readEvents } from '@gatehouse/audit';
import { filesUnder } from '../../lib/files.js';
import { startTestGateway, TOKENS } from '../../lib/gateway.js';
import { connectorsYaml, dbUpstream, postgresConnector } from '../../lib/postgres.js';
import { ADMIN, createTestDb, direct, gatewayClient, psql } from './pg-env.js';

const CARD = '4111111111111111';
const CARD2 = '5500000000000004';
const SSN = '078-05-1120';

t.test('a hostile masked caller', async (t) => {
  const db = await createTestDb('hostile');
  const maskedRole = `gh_masked_${randomBytes(4).toString('hex')}`;
  await direct(
    db,
    `CREATE TABLE cards (id int PRIMARY KEY, holder text, card_number text UNIQUE, note text);
     INSERT INTO cards VALUES (1, 'Ada', '${CARD}', 'vip'), (2, 'Bob', '${CARD2}', 'new');
     CREATE TABLE customers (id int PRIMARY KEY, ssn text, name text);
     INSERT INTO customers VALUES (1, '${SSN}', 'Ada');
     CREATE TABLE employees (id int, ssn text);
     INSERT INTO employees VALUES (1, 'not-masked-here');
     CREATE VIEW card_view AS SELECT id, substr(card_number, 1, 8) AS head FROM cards;
     CREATE FUNCTION leak() RETURNS text LANGUAGE sql AS $$ SELECT string_agg(card_number, ',') FROM cards $$;
     ANALYZE cards;`,
  );
  const admin = new pg.Client(ADMIN);
  await admin.connect();
  await admin.query(`CREATE ROLE ${maskedRole} LOGIN`);
  await admin.end();
  await direct(db, `GRANT SELECT (id, holder) ON cards TO ${maskedRole}`);

  const tg = await startTestGateway({
    env: { PG_PASSWORD: db.password },
    yaml: connectorsYaml([
      postgresConnector({
        // Contractors log in upstream as a role that may read only (id, holder) of cards.
        upstream: dbUpstream(db, 'disable', { extra: `by_group: [ { groups: [contractors], user: ${maskedRole} } ]` }),
        rules: ['{ name: no-drop, match: { statement: [drop] }, action: deny }'],
        masking: [
          '{ columns: [card_number, public.customers.ssn], with: last4, exempt: { groups: [analysts] } }',
          '{ detectors: [credit_card], with: last4, exempt: { groups: [analysts] } }',
        ],
      }),
      postgresConnector({
        name: 'pgp',
        extra: ['masking_mode: permissive'],
        upstream: dbUpstream(db, 'disable'),
        masking: ['{ columns: [card_number], with: last4 }', '{ detectors: [credit_card], with: last4 }'],
      }),
    ]),
  });
  const clients: pg.Client[] = [];
  t.teardown(async () => {
    for (const c of clients) await c.end().catch(() => {});
    await tg.stop();
    await db.drop();
    const a = new pg.Client(ADMIN);
    await a.connect();
    await a.query(`DROP ROLE IF EXISTS ${maskedRole}`).catch(() => {});
    await a.end();
  });
  const addr = tg.address('pg');
  const open = async (name = 'pg', token: string = TOKENS.billing) => {
    const c = await gatewayClient(tg.address(name), token);
    c.on('error', () => {});
    clients.push(c);
    return c;
  };
  const billing = await open();

  t.test('desync: a statement failing during Execute, then SELECT *: masked and audited', async (t) => {
    const c = await open();
    await t.rejects(c.query({ text: 'SELECT 1/(id-1) FROM cards WHERE $1', values: [true] }), /division by zero/);
    const r = await c.query<{ card_number: string }>('SELECT * FROM cards ORDER BY id');
    t.same(
      r.rows.map((x) => x.card_number),
      ['************1111', '************0004'],
    );
    const units = readEvents(tg.dataDir, { connector: 'pg', kind: 'unit', limit: 10_000 });
    t.ok(
      units.some((e) => e.unit?.text === 'SELECT * FROM cards ORDER BY id' && e.result?.status === 'SELECT 2'),
      'the second statement is in the trail',
    );
  });

  t.test('masking follows the column, not its name: aliases, qualified names, table-scoped rules', async (t) => {
    const r = await billing.query('SELECT c.card_number AS x, c.holder AS card_number_holder FROM cards c WHERE c.id = 1');
    t.same(r.rows, [{ x: '************1111', card_number_holder: 'Ada' }]);
    const ssn = await billing.query('SELECT ssn AS who FROM customers');
    t.same(ssn.rows, [{ who: '***-**-1120' }], 'public.customers.ssn is masked under any alias');
    const other = await billing.query('SELECT ssn FROM employees');
    t.same(other.rows, [{ ssn: 'not-masked-here' }], 'a rule scoped to a table does not mask another table');
    const sub = await billing.query<{ card_number: string }>('SELECT * FROM (SELECT * FROM cards) s ORDER BY id');
    t.equal(sub.rows[0].card_number, '************1111');
  });

  const refused: [string, string][] = [
    ['substr pieces', 'SELECT substr(card_number, 1, 8), substr(card_number, 9) FROM cards'],
    ['reverse', 'SELECT reverse(card_number) FROM cards'],
    ['translate', "SELECT translate(card_number, '0123456789', 'abcdefghij') FROM cards"],
    ['arithmetic on a cast', 'SELECT card_number::numeric * 3 FROM cards'],
    ['concat', "SELECT concat(card_number, '') FROM cards"],
    ['aggregate', "SELECT string_agg(card_number, '') FROM cards"],
    ['cast error side channel', 'SELECT card_number::int FROM cards'],
    ['inference through WHERE', "SELECT id FROM cards WHERE card_number LIKE '4%'"],
    ['ORDER BY', 'SELECT id FROM cards ORDER BY card_number'],
    ['whole row', 'SELECT c FROM cards c'],
    ['row_to_json', 'SELECT row_to_json(c) FROM cards c'],
    ['whole row as text', 'SELECT c::text FROM cards c'],
    ['UNION arm', "SELECT card_number FROM cards UNION SELECT 'x'"],
    ['expression in a subquery', 'SELECT x FROM (SELECT reverse(card_number) AS x FROM cards) s'],
    ['CTE', 'WITH s AS (SELECT card_number FROM cards) SELECT card_number FROM s'],
    ['copy into another table', 'CREATE TABLE stolen AS SELECT card_number FROM cards'],
    ['INSERT … SELECT', 'INSERT INTO customers (id, ssn) SELECT id + 100, card_number FROM cards'],
    ['view over a masked column', 'SELECT head FROM card_view'],
    ['user function', 'SELECT leak()'],
    ['pg_notify payload', "SELECT pg_notify('c', card_number) FROM cards"],
    ['set_config side channel', "SELECT set_config('application_name', card_number, false) FROM cards"],
    ['planner statistics', "SELECT most_common_vals::text FROM pg_stats WHERE attname = 'card_number'"],
    ['SQL given as text', "SELECT query_to_xml('select card_number from cards', true, false, '')"],
    ['RAISE NOTICE in a DO block', "DO $$DECLARE v text; BEGIN SELECT card_number INTO v FROM cards LIMIT 1; RAISE NOTICE '%', v; END$$"],
    ['dynamic SQL', "DO $$BEGIN EXECUTE 'select 1'; END$$"],
  ];
  for (const [name, sql] of refused) {
    t.test(`restricted SQL refuses: ${name}`, async (t) => {
      const err = await billing.query(sql).then(
        () => null,
        (e: Error & { code?: string }) => e,
      );
      t.ok(err, 'refused');
      t.equal(err?.code, '42501');
      t.notMatch(err?.message ?? '', CARD);
      t.notMatch(err?.message ?? '', CARD2);
    });
  }

  t.test('the exempt group and permissive mode are not restricted', async (t) => {
    const analyst = await open('pg', TOKENS.analyst);
    const r = await analyst.query('SELECT reverse(card_number) AS r FROM cards WHERE id = 1');
    t.same(r.rows, [{ r: CARD.split('').reverse().join('') }]);
    const perm = await open('pgp');
    const p = await perm.query('SELECT substr(card_number, 1, 6) AS head FROM cards WHERE id = 1');
    t.same(p.rows, [{ head: '411111' }], 'permissive gives up expressions (documented)');
  });

  t.test('permissive mode still masks every message: notices, errors, notifications, parameter status', async (t) => {
    const c = await open('pgp');
    const notices: string[] = [];
    c.on('notice', (n) => notices.push(`${n.message}|${n.detail}|${n.hint}`));
    await c.query(`DO $$BEGIN RAISE NOTICE 'n %', (SELECT card_number FROM cards WHERE id = 1) USING DETAIL = 'd ${CARD}', HINT = 'h ${CARD}'; END$$`);
    t.equal(notices.length, 1);
    t.notMatch(notices[0], CARD);
    t.match(notices[0], '************1111');

    const raised = await c
      .query(`DO $$BEGIN RAISE EXCEPTION 'e %', (SELECT card_number FROM cards WHERE id = 1) USING DETAIL = 'd ${CARD}'; END$$`)
      .catch((e: Error & { detail?: string }) => e);
    t.ok(raised instanceof Error);
    t.notMatch(`${(raised as Error).message}|${(raised as { detail?: string }).detail}`, CARD);

    const cast = await c.query('SELECT card_number::int FROM cards WHERE id = 1').catch((e: Error) => e);
    t.ok(cast instanceof Error);
    t.notMatch((cast as Error).message, CARD, 'a cast error quoting the value is masked');

    const dup = await c.query(`INSERT INTO cards VALUES (9, 'Eve', '${CARD}', '')`).catch((e: Error & { detail?: string }) => e);
    t.ok(dup instanceof Error);
    t.notMatch(String((dup as { detail?: string }).detail), CARD, 'unique-violation detail masked');

    const listener = await open('pgp');
    const got: string[] = [];
    listener.on('notification', (n) => got.push(`${n.channel}|${n.payload}`));
    await listener.query('LISTEN c');
    await c.query(`SELECT pg_notify('c', card_number) FROM cards WHERE id = 1`);
    for (let i = 0; i < 50 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    t.equal(got.length, 1);
    t.notMatch(got[0], CARD, 'notification payload masked');

    await c.query(`SELECT set_config('application_name', card_number, false) FROM cards WHERE id = 1`);
    const shown = await c.query('SHOW application_name');
    t.notMatch(JSON.stringify(shown.rows), CARD, 'SHOW is a row of a masked caller: detectors apply');
  });

  t.test('upstream.by_group: a contractor logs in as a role with column grants (the database backs the gateway)', async (t) => {
    const contractor = await open('pg', TOKENS.contractor);
    const ok = await contractor.query<{ id: number; holder: string }>('SELECT id, holder FROM cards ORDER BY id');
    t.same(
      ok.rows.map((r) => r.holder),
      ['Ada', 'Bob'],
    );
    const denied = await contractor.query('SELECT card_number FROM cards').catch((e: Error & { code?: string }) => e);
    t.equal((denied as { code?: string }).code, '42501', 'the database itself refuses the column');
    const who = await contractor.query<{ u: string }>('SELECT current_user AS u');
    t.equal(who.rows[0].u, maskedRole);
    const who2 = await billing.query<{ u: string }>('SELECT current_user AS u');
    t.equal(who2.rows[0].u, db.role);
  });

  t.test('psql: the same refusals, and the session continues', async (t) => {
    const r = await psql(addr, TOKENS.billing, ['-c', 'SELECT reverse(card_number) FROM cards', '-c', 'SELECT card_number FROM cards WHERE id = 2'], { sslmode: 'disable' });
    t.match(r.stderr, /masked/);
    t.equal(r.stdout.trim(), '************0004');
  });

  t.test('no clear masked value anywhere in data_dir', async (t) => {
    const leaks = filesUnder(tg.dataDir).filter((f) => f.bytes.includes(CARD) || f.bytes.includes(CARD2) || f.bytes.includes(SSN));
    t.same(
      leaks.map((f) => f.path),
      [],
      'no file under data_dir holds a clear test value',
    );
  });
});
