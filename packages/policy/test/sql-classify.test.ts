import t from 'tap';
import { classifySql, initSqlParser, sqlUnits, sqlUnitCacheSize } from '../src/index.js';

t.before(async () => {
  await initSqlParser();
  await initSqlParser(); // idempotent
});

// [sql, kind, kinds, tables, where] for single-statement inputs.
const corpus: [string, string, string[], string[], string][] = [
  ['SELECT * FROM users', 'select', ['select'], ['users'], 'n/a'],
  ['select a from Public.Users u join "Billing"."Invoices" i on i.uid = u.id', 'select', ['select'], ['public.users', 'Billing.Invoices'], 'n/a'],
  ['SELECT * FROM a WHERE id IN (SELECT id FROM s.b)', 'select', ['select'], ['a', 's.b'], 'n/a'],
  ['INSERT INTO t (a) VALUES (1)', 'insert', ['insert'], ['t'], 'n/a'],
  ['INSERT INTO t SELECT * FROM src', 'insert', ['insert'], ['t', 'src'], 'n/a'],
  ['UPDATE accounts SET balance = 0', 'update', ['update'], ['accounts'], 'absent'],
  ['UPDATE accounts SET balance = 0 WHERE id = 1', 'update', ['update'], ['accounts'], 'present'],
  ['DELETE FROM orders', 'delete', ['delete'], ['orders'], 'absent'],
  ['DELETE FROM orders o USING customers c WHERE o.cid = c.id', 'delete', ['delete'], ['orders', 'customers'], 'present'],
  ['MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE', 'merge', ['merge', 'delete'], ['t', 's'], 'present'],
  ['WITH d AS (DELETE FROM audit_log RETURNING *) SELECT count(*) FROM d', 'select', ['select', 'delete'], ['audit_log'], 'absent'],
  ['WITH u AS (UPDATE t SET a = 1 WHERE b RETURNING *) SELECT * FROM u', 'select', ['select', 'update'], ['t'], 'present'],
  ['WITH users AS (SELECT * FROM users) SELECT * FROM users', 'select', ['select'], ['users'], 'n/a'],
  ['WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT * FROM r', 'select', ['select'], [], 'n/a'],
  ['SELECT * FROM x, (WITH x AS (SELECT 1) SELECT * FROM x) sub', 'select', ['select'], ['x'], 'n/a'],
  ['EXPLAIN ANALYZE DELETE FROM t', 'explain', ['explain', 'delete'], ['t'], 'absent'],
  ['EXPLAIN SELECT 1', 'explain', ['explain'], [], 'n/a'],
  ['PREPARE p(int) AS DELETE FROM t WHERE id = $1', 'prepare', ['prepare', 'delete'], ['t'], 'present'],
  ['EXECUTE p(1)', 'execute', ['execute'], [], 'n/a'],
  ['DEALLOCATE p', 'deallocate', ['deallocate'], [], 'n/a'],
  ['CREATE TABLE copy AS SELECT * FROM src', 'create', ['create'], ['src', 'copy'], 'n/a'],
  ['SELECT * INTO newt FROM src', 'create', ['create'], ['newt', 'src'], 'n/a'],
  ['COPY t (a, b) FROM STDIN', 'copy', ['copy'], ['t'], 'n/a'],
  ['COPY (SELECT * FROM secrets) TO STDOUT', 'copy', ['copy'], ['secrets'], 'n/a'],
  ['COPY (DELETE FROM t RETURNING *) TO STDOUT', 'copy', ['copy', 'delete'], ['t'], 'absent'],
  ['CREATE TABLE s.t (id int REFERENCES u(id))', 'create', ['create'], ['s.t', 'u'], 'n/a'],
  ['CREATE INDEX ON t (a)', 'create', ['create'], ['t'], 'n/a'],
  ['CREATE VIEW v AS SELECT * FROM t', 'create', ['create'], ['v', 't'], 'n/a'],
  ['ALTER TABLE t ADD COLUMN c int', 'alter', ['alter'], ['t'], 'n/a'],
  ['ALTER TABLE t RENAME TO u', 'alter', ['alter'], ['t'], 'n/a'],
  ['DROP TABLE a.b, "C"', 'drop', ['drop'], ['a.b', 'C'], 'n/a'],
  ['DROP FUNCTION f()', 'drop', ['drop'], [], 'n/a'],
  ['TRUNCATE a, b.c', 'truncate', ['truncate'], ['a', 'b.c'], 'n/a'],
  ['GRANT SELECT ON t TO bob', 'grant', ['grant'], ['t'], 'n/a'],
  ['REVOKE ALL ON t FROM bob', 'revoke', ['revoke'], ['t'], 'n/a'],
  ['GRANT admin TO bob', 'grant', ['grant'], [], 'n/a'],
  ["COMMENT ON TABLE t IS 'x'", 'comment', ['comment'], [], 'n/a'],
  ['SET search_path = public', 'set', ['set'], [], 'n/a'],
  ['SHOW search_path', 'show', ['show'], [], 'n/a'],
  ['RESET ALL', 'reset', ['reset'], [], 'n/a'],
  ['BEGIN', 'begin', ['begin'], [], 'n/a'],
  ['START TRANSACTION ISOLATION LEVEL SERIALIZABLE', 'begin', ['begin'], [], 'n/a'],
  ['COMMIT', 'commit', ['commit'], [], 'n/a'],
  ['ROLLBACK', 'rollback', ['rollback'], [], 'n/a'],
  ['SAVEPOINT s1', 'savepoint', ['savepoint'], [], 'n/a'],
  ['CALL refresh_all(1)', 'call', ['call'], [], 'n/a'],
  ['DO $$BEGIN DELETE FROM t; END$$', 'do', ['do', 'delete'], ['t'], 'absent'],
  ["DO $body$ BEGIN RAISE NOTICE 'hi'; END $body$", 'do', ['do'], [], 'n/a'],
  ['LISTEN ch', 'listen', ['listen'], [], 'n/a'],
  ["NOTIFY ch, 'x'", 'notify', ['notify'], [], 'n/a'],
  ['UNLISTEN *', 'unlisten', ['unlisten'], [], 'n/a'],
  ['VACUUM t', 'vacuum', ['vacuum'], ['t'], 'n/a'],
  ['ANALYZE t', 'analyze', ['analyze'], ['t'], 'n/a'],
  ['LOCK TABLE t IN ACCESS EXCLUSIVE MODE', 'lock', ['lock'], ['t'], 'n/a'],
  ['DISCARD ALL', 'discard', ['discard'], [], 'n/a'],
  ['REFRESH MATERIALIZED VIEW mv', 'refresh', ['refresh'], ['mv'], 'n/a'],
  ['CLUSTER t USING idx', 'cluster', ['cluster'], ['t'], 'n/a'],
  ['REINDEX TABLE t', 'reindex', ['reindex'], ['t'], 'n/a'],
  ['CHECKPOINT', 'other', ['other'], [], 'n/a'],
  // Tricky lexing: keywords inside comments and strings are not statements.
  ["SELECT '; DELETE FROM t' AS s -- DROP TABLE x\n", 'select', ['select'], [], 'n/a'],
  ['/* DELETE FROM t; */ SELECT $tag$ DROP TABLE y; $tag$', 'select', ['select'], [], 'n/a'],
];

t.test('classifies a broad corpus', async (t) => {
  for (const [sql, kind, kinds, tables, where] of corpus) {
    const r = classifySql(sql);
    if (!r.ok) {
      t.fail(`${sql}: ${r.error.message}`);
      continue;
    }
    t.equal(r.value.length, 1, `${sql}: one statement`);
    const s = r.value[0];
    t.same({ kind: s.kind, kinds: s.kinds, tables: s.tables, where: s.where }, { kind, kinds, tables, where }, sql);
  }
});

t.test('multi-statement strings are split with their own text', async (t) => {
  const sql = 'SELECT 1; -- note\nDELETE FROM t /* c */ ;UPDATE "Foo".bar SET a = \'x;y\' WHERE b';
  const r = classifySql(sql);
  t.ok(r.ok);
  if (!r.ok) return;
  t.same(
    r.value.map((s) => s.kind),
    ['select', 'delete', 'update'],
  );
  t.equal(r.value[0].text, 'SELECT 1');
  t.match(r.value[1].text, /DELETE FROM t \/\* c \*\/$/);
  t.equal(r.value[2].text, 'UPDATE "Foo".bar SET a = \'x;y\' WHERE b');
  t.same(r.value[2].tables, ['Foo.bar']);
});

t.test('statement text is sliced correctly after multi-byte characters', async (t) => {
  const r = classifySql("SELECT 'héllo wörld 🙂'; DELETE FROM naïve");
  t.ok(r.ok);
  if (!r.ok) return;
  t.equal(r.value[0].text, "SELECT 'héllo wörld 🙂'");
  t.equal(r.value[1].text, 'DELETE FROM naïve');
  t.same(r.value[1].tables, ['naïve']);
});

t.test('empty queries give no statements', async (t) => {
  for (const q of ['', '   ', ';', ' ; ;', '-- only a comment', '/* c */']) {
    const r = classifySql(q);
    t.same(r, { ok: true, value: [] }, JSON.stringify(q));
  }
});

t.test('syntax errors are policy.parse errors with the parser message', async (t) => {
  const r = classifySql('SELEC * FROM t');
  t.equal(r.ok, false);
  if (!r.ok) {
    t.equal(r.error.code, 'policy.parse');
    t.match(r.error.message, /syntax error at or near "SELEC"/);
  }
  const u = sqlUnits('DELETE FROM WHERE');
  t.equal(u.ok, false);
});

t.test('sqlUnits builds frozen, cached units', async (t) => {
  const sql = 'SELECT * FROM cache_probe_1; DELETE FROM cache_probe_2';
  const before = sqlUnitCacheSize();
  const a = sqlUnits(sql);
  const b = sqlUnits(sql);
  t.equal(a, b, 'second call returns the cached result object');
  t.equal(sqlUnitCacheSize(), before + 1);
  t.ok(a.ok);
  if (!a.ok) return;
  const [sel, del] = a.value;
  t.equal(sel.type, 'statement');
  t.same(sel.match, { statement: ['select'], tables: ['cache_probe_1'], where: 'n/a' });
  t.same(del.context, {
    kind: 'delete',
    kinds: ['delete'],
    tables: ['cache_probe_2'],
    where: 'absent',
    text: 'DELETE FROM cache_probe_2',
    opaque: false,
    opaqueReason: '',
    columns: { output: [], expr: [], wholeRows: [], functions: [], relations: ['cache_probe_2'] },
  });
  t.ok(Object.isFrozen(del) && Object.isFrozen(del.match) && Object.isFrozen(del.context) && Object.isFrozen(del.match.tables));
  const cols = del.context.columns as { expr: string[] };
  t.ok(Object.isFrozen(cols) && Object.isFrozen(cols.expr), 'the column-use summary is frozen too');
  t.throws(() => {
    (del.match.tables as string[]).push('x');
  });
  const withDb = sqlUnits(sql, { database: 'payments' });
  t.ok(withDb.ok && withDb.value[0].match.database === 'payments');
  t.not(withDb, a, 'separate cache per database');
});

t.test('long texts are classified but not cached', async (t) => {
  const long = 'SELECT ' + Array.from({ length: 3000 }, (_, i) => `c${i}`).join(', ') + ' FROM wide';
  t.ok(long.length > 16 * 1024);
  const before = sqlUnitCacheSize();
  const r = sqlUnits(long);
  t.ok(r.ok && r.value[0].match.tables?.[0] === 'wide');
  t.equal(sqlUnitCacheSize(), before);
  t.not(sqlUnits(long), r);
});
