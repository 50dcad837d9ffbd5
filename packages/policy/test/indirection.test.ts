/**
 * Rules cannot be dodged by indirection: procedural bodies (DO, functions, procedures),
 * triggers, rules, MERGE actions and trivial WHERE clauses.
 */
import t from 'tap';
import type { Identity, RuleConfig, Unit } from '@gatehouse/core';
import { classifySql, compilePolicy, initSqlParser, sqlUnits, type SqlStatement } from '../src/index.js';

t.before(() => initSqlParser());

const alice: Identity = { subject: 'svc:billing', issuer: 'https://idp', groups: ['payments'], claims: {} };
const pg = { name: 'payments-db', type: 'postgres' };

function one(sql: string): SqlStatement {
  const r = classifySql(sql);
  if (!r.ok) throw new Error(`${sql}: ${r.error.message}`);
  if (r.value.length !== 1) throw new Error(`${sql}: ${r.value.length} statements`);
  return r.value[0];
}
function unit(sql: string): Unit {
  const r = sqlUnits(sql);
  if (!r.ok || r.value.length !== 1) throw new Error(`bad fixture ${sql}`);
  return r.value[0];
}
function engine(rules: RuleConfig[]) {
  const r = compilePolicy(rules, { connectorType: 'postgres' });
  if (!r.ok) throw new Error(r.error.message);
  return r.value;
}

t.test('DO blocks: static statements are parsed and merged', async (t) => {
  const s = one(`DO $$DECLARE n int; BEGIN
      UPDATE accounts SET balance = 0 WHERE id = 7;
      IF (SELECT count(*) FROM audit.log) > 0 THEN DELETE FROM audit.log; END IF;
      PERFORM pg_sleep(0);
      INSERT INTO s.t SELECT * FROM src RETURNING id INTO n;
    END$$`);
  t.same(s.kinds.sort(), ['delete', 'do', 'insert', 'update']);
  t.same(s.tables.sort(), ['accounts', 'audit.log', 's.t', 'src']);
  t.equal(s.where, 'absent', 'the nested DELETE has no WHERE');
  t.equal(s.opaque, false);

  const drop = one("DO $$BEGIN DROP TABLE v; RAISE NOTICE 'dropped %', 1; END$$");
  t.same(drop.kinds, ['do', 'drop']);
  t.same(drop.tables, ['v']);
  // Keywords in strings and comments of the body are not statements (the old keyword scan saw them).
  const quiet = one("DO $$BEGIN RAISE NOTICE 'please do not DELETE or DROP anything'; -- TRUNCATE\nEND$$");
  t.same(quiet.kinds, ['do']);
  t.equal(quiet.opaque, false);
  // Nested: a DO block creating a function whose body deletes.
  const nested = one('DO $$BEGIN CREATE FUNCTION g() RETURNS void LANGUAGE plpgsql AS $b$ BEGIN DELETE FROM w; END $b$; END$$');
  t.same(nested.kinds, ['do', 'create', 'delete']);
  t.same(nested.tables, ['w']);
  // The wrapper's dollar-quote tag cannot collide with the body.
  const tags = one("DO $q$BEGIN RAISE NOTICE '$gh$ and $gh1$'; TRUNCATE x; END$q$");
  t.same(tags.kinds, ['do', 'truncate']);
  t.equal(tags.opaque, false);
});

t.test('DO blocks: dynamic SQL, other languages and unparsable bodies are opaque', async (t) => {
  const cases: [string, RegExp][] = [
    ["DO $$BEGIN EXECUTE 'DR'||'OP TABLE v'; END$$", /dynamic SQL/],
    ["DO $$DECLARE r record; BEGIN FOR r IN EXECUTE 'SELECT 1' LOOP END LOOP; END$$", /dynamic SQL/],
    ["DO $$DECLARE c refcursor; BEGIN OPEN c FOR EXECUTE 'SELECT 1'; END$$", /dynamic SQL/],
    ["DO LANGUAGE plpython3u $$plpy.execute('DROP TABLE v')$$", /language plpython3u/],
    ['DO $$BEGIN SELEC 1; END$$', /does not parse/],
    ['DO $$BEGIN undeclared_var := 1; END$$', /does not parse/],
  ];
  for (const [sql, why] of cases) {
    const s = one(sql);
    t.equal(s.opaque, true, sql);
    t.match(s.opaqueReason, why, sql);
    t.equal(s.kind, 'do');
  }
  t.equal(one('DO $$BEGIN NULL; END$$').opaque, false, 'a harmless block is not opaque');
  // Functions that run SQL given as text are dynamic SQL too, wherever they are called.
  const dbl = one("SELECT dblink_exec('dbname=payments', 'DROP TABLE v')");
  t.equal(dbl.opaque, true);
  t.match(dbl.opaqueReason, /dblink_exec runs SQL given as text/);
  t.equal(one("SELECT * FROM public.dblink('dbname=p', 'DELETE FROM v RETURNING 1') AS t(x int)").opaque, true);
});

t.test('CREATE FUNCTION / PROCEDURE bodies are judged at CREATE', async (t) => {
  const plp = one('CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $x$ BEGIN DROP TABLE t; END $x$');
  t.same(plp.kinds, ['create', 'drop']);
  t.same(plp.tables, ['t']);
  const proc = one('CREATE OR REPLACE PROCEDURE p(n int) LANGUAGE plpgsql AS $$BEGIN TRUNCATE big; COMMIT; END$$');
  t.same(proc.kinds, ['create', 'truncate', 'commit']);
  const sqlBody = one('CREATE FUNCTION f(a int) RETURNS int LANGUAGE sql AS $$DELETE FROM t WHERE id = a; SELECT 1$$');
  t.same(sqlBody.kinds, ['create', 'delete']);
  t.equal(sqlBody.where, 'present');
  const atomic = one('CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC UPDATE t SET a = 1; SELECT 1; END');
  t.same(atomic.kinds, ['create', 'update']);
  t.equal(atomic.where, 'absent');
  const setof = one('CREATE FUNCTION f() RETURNS SETOF int LANGUAGE plpgsql AS $$BEGIN RETURN QUERY SELECT id FROM t; DELETE FROM u WHERE true; END$$');
  t.same(setof.kinds, ['create', 'delete']);
  t.equal(setof.where, 'trivial');
  t.equal(setof.opaque, false);

  for (const [sql, why] of [
    ["CREATE FUNCTION f() RETURNS SETOF int LANGUAGE plpgsql AS $$BEGIN RETURN QUERY EXECUTE 'SELECT 1'; END$$", /dynamic SQL/],
    ["CREATE PROCEDURE p() LANGUAGE plpgsql AS $$BEGIN EXECUTE format('DROP TABLE %I', 'v'); END$$", /dynamic SQL/],
    ['CREATE FUNCTION f() RETURNS int LANGUAGE plpython3u AS $$return 1$$', /language plpython3u/],
    ["CREATE FUNCTION f() RETURNS int LANGUAGE c AS 'mylib', 'f'", /language c/],
    ['CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$SELEC 1$$', /does not parse/],
  ] as [string, RegExp][]) {
    const s = one(sql);
    t.equal(s.opaque, true, sql);
    t.match(s.opaqueReason, why, sql);
  }
});

t.test('triggers are opaque; rules are classified by their actions', async (t) => {
  const trig = one('CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION f()');
  t.same(trig.kinds, ['create']);
  t.equal(trig.opaque, true);
  t.match(trig.opaqueReason, /trigger/);
  t.equal(one('CREATE EVENT TRIGGER e ON ddl_command_start EXECUTE FUNCTION f()').opaque, true);

  const rule = one('CREATE RULE r AS ON INSERT TO t DO INSTEAD DELETE FROM u');
  t.same(rule.kinds, ['create', 'delete']);
  t.same(rule.tables, ['t', 'u']);
  t.equal(rule.where, 'absent');
  t.equal(rule.opaque, false);
  const copy = one('CREATE RULE r AS ON INSERT TO cards DO ALSO INSERT INTO log SELECT NEW.*');
  t.same(copy.kinds, ['create', 'insert']);
  t.same(copy.columns.wholeRows, ['?'], 'NEW.* copies a whole row');
});

t.test('MERGE carries the kinds of its WHEN actions', async (t) => {
  const m = one('MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE WHEN NOT MATCHED THEN INSERT VALUES (s.id)');
  t.same(m.kinds, ['merge', 'delete', 'insert']);
  t.equal(m.where, 'present');
  t.same(one('MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET a = 1').kinds, ['merge', 'update']);
  t.same(one('MERGE INTO t USING s ON t.id = s.id WHEN NOT MATCHED THEN INSERT VALUES (1)').where, 'n/a', 'insert-only MERGE is no filtered write');
  t.equal(one('MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE').where, 'trivial');
  t.equal(one('MERGE INTO t USING s ON true WHEN MATCHED AND t.id = 5 THEN DELETE').where, 'present', 'the action condition filters');
  t.equal(one('MERGE INTO t USING s ON t.id = s.id WHEN NOT MATCHED BY SOURCE THEN DELETE').where, 'trivial', 'BY SOURCE touches every unmatched row');
  t.same(one('INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET a = excluded.a').kinds, ['insert', 'update']);
});

t.test('trivial WHERE clauses', async (t) => {
  const trivial = [
    'true',
    '1=1',
    "'a'='a'",
    'id=id',
    'x >= x',
    't.x <= t.x',
    'NOT false',
    'true OR id = 5',
    '1=1 AND id=id',
    'true::boolean',
    "'t'::bool",
    "'yes'::boolean",
    '(1 = 1)::bool',
    'x IS NOT DISTINCT FROM x',
    'NULL IS NULL',
    'NOT (1 = 2)',
    '1 <> 2',
    '2 > 1',
    '1 + 1 = 2',
    "'1' = 1",
    '1 IN (1, 2)',
    'id IN (id)',
    'EXISTS (SELECT 1)',
    'true IS TRUE',
    '0 = 0',
    '1.5 = 1.5',
    'lower(x) = lower(x) OR true',
  ];
  for (const cond of trivial) {
    t.equal(one(`DELETE FROM t WHERE ${cond}`).where, 'trivial', cond);
    t.equal(one(`UPDATE t SET a = 1 WHERE ${cond}`).where, 'trivial', cond);
  }
  const real = [
    'id = 5',
    'id > 0',
    'x = y',
    'random() = random()',
    'lower(x) = lower(x)',
    'x <> x',
    'NOT true',
    'false OR id = 1',
    "'a' < 'B'",
    'EXISTS (SELECT 1 FROM u WHERE u.id = t.id)',
    'NULL',
    'true AND id = 1',
    "x = 'x'",
    'CURRENT OF c',
    "'a'::citext = 'A'::citext",
  ];
  for (const cond of real) t.equal(one(`DELETE FROM t WHERE ${cond}`).where, 'present', cond);
  // Statement level: absent beats trivial beats present.
  t.equal(one('WITH a AS (DELETE FROM x WHERE true RETURNING 1) DELETE FROM y WHERE id = 1').where, 'trivial');
  t.equal(one('WITH a AS (DELETE FROM x WHERE true RETURNING 1) DELETE FROM y').where, 'absent');
});

t.test('policy: where: absent also matches trivial; where: trivial only trivial', async (t) => {
  const p = engine([{ name: 'bulk-write', match: { statement: ['delete', 'update'], where: 'absent' }, action: 'review' }]);
  t.equal(p.decide(unit('DELETE FROM t WHERE true'), alice, pg).rule, 'bulk-write', 'DELETE … WHERE true is a bulk delete');
  t.equal(p.decide(unit('UPDATE t SET a = 1 WHERE 1 = 1'), alice, pg).rule, 'bulk-write');
  t.equal(p.decide(unit('DELETE FROM t'), alice, pg).rule, 'bulk-write');
  t.equal(p.decide(unit('DELETE FROM t WHERE id = 1'), alice, pg).action, 'allow');
  t.equal(p.decide(unit('MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE'), alice, pg).rule, 'bulk-write', 'MERGE delete seen as a delete');

  const q = engine([{ name: 'tauto', match: { where: 'trivial' }, action: 'deny' }]);
  t.equal(q.decide(unit('DELETE FROM t WHERE id = id'), alice, pg).rule, 'tauto');
  t.equal(q.decide(unit('DELETE FROM t'), alice, pg).action, 'allow', 'trivial does not match absent');
  t.equal(q.decide(unit('DELETE FROM t WHERE id = 2'), alice, pg).action, 'allow');
  const cel = engine([{ name: 'cel', when: 'statement.where == "trivial"', action: 'deny' }]);
  t.equal(cel.decide(unit('UPDATE t SET a = 1 WHERE NOT false'), alice, pg).rule, 'cel');
});

t.test('policy: opaque procedural code is refused by default where deny/review rules apply', async (t) => {
  const rules: RuleConfig[] = [
    { name: 'no-drop', match: { statement: ['drop'] }, action: 'deny' },
    { name: 'bulk-write', match: { statement: ['delete', 'update'], where: 'absent' }, action: 'review' },
  ];
  const p = engine(rules);
  const d = p.decide(unit("DO $$BEGIN EXECUTE 'DR'||'OP TABLE v'; END$$"), alice, pg);
  t.equal(d.action, 'deny');
  t.equal(d.rule, 'opaque-procedure');
  t.match(d.reason, /dynamic SQL/);
  t.match(d.reason, /allow it explicitly/);
  t.match(p.decide(unit('DO LANGUAGE plperlu $$ system("rm") $$'), alice, pg).reason, /language plperlu/);
  t.equal(p.decide(unit('CREATE TRIGGER tr AFTER INSERT ON t EXECUTE FUNCTION f()'), alice, pg).rule, 'opaque-procedure');
  t.equal(p.decide(unit('CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$BEGIN DROP TABLE t; END$$'), alice, pg).rule, 'no-drop');
  t.equal(p.decide(unit('CREATE PROCEDURE p() LANGUAGE sql AS $$DELETE FROM t$$'), alice, pg).rule, 'bulk-write');
  t.equal(p.decide(unit('DO $$BEGIN DELETE FROM t WHERE id = 1; END$$'), alice, pg).action, 'allow', 'judgeable code is judged, not refused');
  t.equal(p.decide(unit('DO $$BEGIN DROP TABLE t; END$$'), alice, pg).rule, 'no-drop');

  const allowDo = engine([{ name: 'ops-do', match: { statement: ['do'] }, action: 'allow' }, ...rules]);
  t.same(allowDo.decide(unit("DO $$BEGIN EXECUTE 'SELECT 1'; END$$"), alice, pg), { action: 'allow', rule: 'ops-do' }, 'an explicit allow wins');
  const none = engine([{ name: 'only-allow', match: { statement: ['select'] }, action: 'allow' }]);
  t.same(none.decide(unit("DO $$BEGIN EXECUTE 'SELECT 1'; END$$"), alice, pg), { action: 'allow' }, 'no deny/review rule: nothing to dodge');
});

t.test('PL/pgSQL expressions and assignments are walked', async (t) => {
  const s = one(`CREATE FUNCTION f(OUT a int) LANGUAGE plpgsql AS $$
    DECLARE c CURSOR FOR SELECT id FROM cursor_src; arr int[]; v text := (SELECT max(x) FROM defaults);
    BEGIN
      a := (SELECT count(*) FROM assign_src);
      arr[(SELECT min(i) FROM subscript_src)] := 1;
      IF EXISTS (SELECT 1 FROM cond_src) THEN RAISE NOTICE '%', (SELECT 1 FROM raise_src); END IF;
    END$$`);
  t.same(s.tables.sort(), ['assign_src', 'cond_src', 'cursor_src', 'defaults', 'raise_src', 'subscript_src']);
  t.equal(s.opaque, false);
});
