/**
 * The column-use summary of each statement and restrictedSqlViolation, the check the
 * PostgreSQL connector runs for masked callers.
 */
import t from 'tap';
import type { Unit } from '@gatehouse/core';
import { initSqlParser, restrictedSqlViolation, sqlUnits, type RestrictedSqlView, type SqlColumnUse } from '../src/index.js';

t.before(() => initSqlParser());

function unit(sql: string): Unit {
  const r = sqlUnits(sql);
  if (!r.ok || r.value.length !== 1) throw new Error(`bad fixture ${sql}: ${r.ok ? r.value.length : r.error.message}`);
  return r.value[0];
}
function cols(sql: string): SqlColumnUse {
  return unit(sql).context.columns as SqlColumnUse;
}
const sorted = (a: readonly string[]) => [...a].sort();

/** cards(id, holder, card_number, note) with card_number masked; v_cards a view over it; f a user function. */
const view: RestrictedSqlView = {
  maskedColumn: (name) => (name === 'card_number' ? 'card_number' : null),
  relationMasked: (rel) => (rel === 'cards' || rel === 'public.cards' ? 'public.cards.card_number' : null),
  viewMasked: (rel) => (rel === 'v_cards' ? 'public.cards.card_number' : null),
  isUserFunction: (name) => name === 'f' || name === 'public.f',
};
const violation = (sql: string) => restrictedSqlViolation(unit(sql), view);

t.test('output vs expression columns', async (t) => {
  const a = cols('SELECT id, cards.card_number AS n, public.cards.holder, upper(note) FROM public.cards WHERE cards.id = 1 ORDER BY holder');
  t.same(sorted(a.output), ['card_number', 'holder', 'id']);
  t.same(sorted(a.expr), ['holder', 'id', 'note']);
  t.same(a.functions, ['upper']);
  t.same(a.relations, ['public.cards']);
  t.same(a.wholeRows, []);

  // Through PREPARE, DECLARE and EXPLAIN the outermost SELECT's bare targets stay output.
  for (const sql of [
    'PREPARE p(int) AS SELECT card_number FROM cards WHERE id = $1',
    'DECLARE c CURSOR FOR SELECT card_number FROM cards',
    'EXPLAIN SELECT card_number FROM cards',
  ]) {
    t.same(cols(sql).output, ['card_number'], sql);
    t.same(cols(sql).expr.includes('card_number'), false, sql);
  }
  // Everything else is an expression use.
  const exprCases = [
    "SELECT card_number || '' FROM cards",
    'SELECT card_number::text FROM cards',
    "SELECT id FROM cards WHERE card_number LIKE '4111%'",
    'SELECT id FROM cards ORDER BY card_number',
    'SELECT card_number FROM cards ORDER BY 1',
    'SELECT card_number AS x FROM cards ORDER BY x',
    'SELECT card_number, count(*) FROM cards GROUP BY 1',
    'SELECT DISTINCT ON (card_number) id FROM cards',
    'SELECT max(card_number) FROM cards',
    'SELECT id FROM cards HAVING count(card_number) > 1',
    'SELECT row_number() OVER (ORDER BY card_number) FROM cards',
    'SELECT (SELECT card_number FROM cards LIMIT 1)',
    'SELECT s.card_number FROM (SELECT card_number FROM cards) s',
    'WITH x AS (SELECT card_number FROM cards) SELECT card_number FROM x',
    'SELECT card_number FROM cards UNION SELECT note FROM cards',
    'DELETE FROM cards WHERE id = 1 RETURNING card_number',
    'INSERT INTO copy_t SELECT card_number FROM cards',
    'UPDATE cards SET note = card_number WHERE id = 1',
    'CREATE TABLE leak AS SELECT card_number FROM cards',
    'SELECT card_number INTO leak FROM cards',
    'COPY (SELECT card_number FROM cards) TO STDOUT',
    "DO $$BEGIN RAISE NOTICE '%', (SELECT card_number FROM cards LIMIT 1); END$$",
    "DO $$DECLARE r record; BEGIN SELECT id, card_number INTO r FROM cards; RAISE NOTICE '%', r.card_number; END$$",
    'CREATE FUNCTION leak() RETURNS text LANGUAGE sql AS $$SELECT card_number FROM cards$$',
    'CREATE VIEW v AS SELECT card_number AS x FROM cards',
  ];
  for (const sql of exprCases) t.ok(cols(sql).expr.includes('card_number'), sql);
});

t.test('whole-row references resolve aliases; subqueries, CTEs and functions are "?"', async (t) => {
  t.same(cols('SELECT c FROM cards c').wholeRows, ['cards']);
  t.same(cols('SELECT row_to_json(c) FROM public.cards c').wholeRows, ['public.cards']);
  t.same(cols('SELECT to_jsonb(cards.*) FROM cards').wholeRows, ['cards']);
  t.same(cols('SELECT (c).card_number FROM cards c').wholeRows, ['cards']);
  t.same(cols('SELECT s FROM (SELECT id FROM cards) s').wholeRows, ['?']);
  t.same(cols('WITH x AS (SELECT id FROM cards) SELECT x FROM x').wholeRows, ['?']);
  t.same(cols('SELECT g FROM generate_series(1, 3) g').wholeRows, ['?']);
  t.same(cols('INSERT INTO backup SELECT * FROM cards').wholeRows, ['cards'], 'a star outside the top-level output');
  t.same(cols('DELETE FROM cards WHERE id = 1 RETURNING *').wholeRows, ['cards']);
  t.same(cols('INSERT INTO backup SELECT * FROM cards c JOIN holders h ON true').wholeRows, ['cards', 'holders']);
  // A star in a FROM (…) subquery passes columns through to the outer query, which is checked itself.
  t.same(cols('SELECT * FROM (SELECT * FROM cards) s ORDER BY id').wholeRows, []);
  t.same(cols('SELECT card_number FROM (SELECT * FROM cards) s').expr, []);
  t.same(cols('SELECT reverse(card_number) FROM (SELECT * FROM cards) s').expr, ['card_number']);
  t.same(cols('SELECT s FROM (SELECT * FROM cards) s').wholeRows, ['?']);
  t.same(cols('SELECT * FROM (SELECT * FROM cards UNION ALL SELECT * FROM cards) s').wholeRows, ['cards'], 'but not through a set operation');
  t.same(cols('SELECT * FROM (SELECT * FROM cards ORDER BY 3) s').wholeRows, ['cards'], 'nor a sort by position');
  t.same(cols('SELECT * FROM cards ORDER BY 3').wholeRows, ['cards'], 'a position behind a star may be any column');
  // Top-level stars and EXISTS (SELECT *) read no whole row.
  t.same(cols('SELECT *, c.* FROM cards c').wholeRows, []);
  t.same(cols('SELECT id FROM t WHERE EXISTS (SELECT * FROM cards)').wholeRows, []);
  t.same(cols("DO $$DECLARE r record; BEGIN FOR r IN SELECT * FROM cards LOOP RAISE NOTICE '%', r; END LOOP; END$$").wholeRows, ['cards']);
});

t.test('restrictedSqlViolation', async (t) => {
  for (const ok of [
    'SELECT id, card_number, note FROM cards WHERE id = 1',
    'SELECT * FROM cards',
    'SELECT c.* FROM public.cards c ORDER BY id',
    'SELECT * FROM (SELECT * FROM cards) s ORDER BY id',
    'PREPARE p(int) AS SELECT card_number FROM cards WHERE id = $1',
    "SELECT count(*) FROM cards WHERE holder = 'x'",
    "UPDATE cards SET card_number = '0' WHERE id = 1",
    'BEGIN',
    "DO $$BEGIN UPDATE cards SET note = 'x' WHERE id = 1; END$$",
  ])
    t.equal(violation(ok), null, ok);

  t.equal(
    violation('SELECT upper(card_number) FROM cards'),
    'gatehouse: column "card_number" is masked for you (rule card_number); it may only be selected as a bare column, not inside an expression',
  );
  t.match(violation("SELECT id FROM cards WHERE card_number = '4111111111111111'"), /column "card_number" is masked/);
  t.notMatch(violation("SELECT id FROM cards WHERE card_number = '4111111111111111'") ?? '', /4111/, 'never echoes values');
  t.match(violation('SELECT row_to_json(c) FROM cards c'), /whole-row reference to "cards" includes masked column "public.cards.card_number"/);
  t.match(violation('SELECT s FROM (SELECT 1) s'), /whole-row reference to a subquery/);
  t.match(violation('SELECT * FROM v_cards'), /view "v_cards" reads masked column "public.cards.card_number"/);
  t.match(violation('SELECT f(id) FROM cards'), /function "f" is not built in/);
  t.match(violation('SELECT public.f()'), /function "public.f" is not built in/);
  t.match(violation("SELECT query_to_xml('SELECT card_number FROM cards', true, false, '')"), /function "query_to_xml" runs SQL/);
  t.match(violation("SELECT pg_catalog.table_to_xml('cards', true, false, '')"), /table_to_xml/);
  t.match(violation("SELECT * FROM dblink('dbname=x', 'SELECT 1') AS t(a int)"), /dblink/);
  t.match(violation("SELECT * FROM ts_stat('SELECT to_tsvector(note) FROM cards')"), /ts_stat/);
  t.match(violation("DO $$BEGIN EXECUTE 'SELECT 1'; END$$"), /code that cannot be analysed \(dynamic SQL/);
  t.match(violation('CREATE TRIGGER tr AFTER INSERT ON cards EXECUTE FUNCTION g()'), /cannot be analysed \(a trigger/);
  // A unit without a summary (e.g. a connector's stand-in for unparsable text) fails closed.
  t.match(restrictedSqlViolation({ type: 'statement', text: 'x', match: {}, context: {} }, view), /could not be analysed/);
});
