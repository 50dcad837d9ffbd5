/**
 * The MySQL / MariaDB classifier: the same kinds, tables, `where` and column use as the
 * PostgreSQL one, and the ways a statement could hide from it (executable comments,
 * comments and strings with `;`, procedural code, dynamic SQL, NO_BACKSLASH_ESCAPES).
 */
import t from 'tap';
import { classifyMysql, mysqlUnits } from '../src/index.js';

function one(sql: string) {
  const r = classifyMysql(sql);
  if (!r.ok) throw new Error(r.error.message);
  if (r.value.length !== 1) throw new Error(`${r.value.length} statements`);
  return r.value[0];
}

t.test('kinds, tables and where read the same as on PostgreSQL', async (t) => {
  const cases: [string, string[], string[], string][] = [
    ['SELECT a FROM shop.cards c JOIN t ON t.id = c.id', ['select'], ['shop.cards', 't'], 'n/a'],
    ['DELETE FROM t', ['delete'], ['t'], 'absent'],
    ['DELETE FROM t WHERE 1 = 1', ['delete'], ['t'], 'trivial'],
    ['DELETE FROM t WHERE true', ['delete'], ['t'], 'trivial'],
    ['UPDATE t SET a = 1 WHERE id = id', ['update'], ['t'], 'trivial'],
    ['UPDATE t SET a = 1 WHERE id = 4', ['update'], ['t'], 'present'],
    ['DELETE a FROM a JOIN b ON a.x = b.x', ['delete'], ['a', 'b'], 'absent'],
    ['INSERT INTO t (a) SELECT card_number FROM cards ON DUPLICATE KEY UPDATE a = 1', ['insert', 'update'], ['cards', 't'], 'n/a'],
    ['REPLACE INTO t VALUES (1)', ['insert', 'delete'], ['t'], 'n/a'],
    ['DROP TABLE a, b.c', ['drop'], ['a', 'b.c'], 'n/a'],
    ['TRUNCATE TABLE t', ['truncate'], ['t'], 'n/a'],
    ['ALTER TABLE t ADD COLUMN x INT', ['alter'], ['t'], 'n/a'],
    ['CREATE TABLE t2 AS SELECT * FROM cards', ['create'], ['t2', 'cards'], 'n/a'],
    ['EXPLAIN DELETE FROM t', ['explain', 'delete'], ['t'], 'absent'],
    ['ANALYZE UPDATE t SET a = 1', ['analyze', 'update'], ['t'], 'absent'],
    ['EXPLAIN FORMAT=JSON SELECT * FROM t', ['explain'], ['t'], 'n/a'],
    ['START TRANSACTION', ['begin'], [], 'n/a'],
    ['COMMIT', ['commit'], [], 'n/a'],
    ['SAVEPOINT a', ['savepoint'], [], 'n/a'],
    ['SET NAMES utf8mb4', ['set'], [], 'n/a'],
    ['SHOW WARNINGS', ['show'], [], 'n/a'],
    ['USE shop', ['set'], [], 'n/a'],
    ['CALL p(1)', ['call'], [], 'n/a'],
    ["PREPARE s FROM 'DELETE FROM t'", ['prepare', 'delete'], ['t'], 'absent'],
    ['EXECUTE s', ['execute'], [], 'n/a'],
    ["LOAD DATA LOCAL INFILE '/x' INTO TABLE t", ['copy', 'insert'], ['t'], 'n/a'],
    ['LOCK TABLES t READ', ['lock'], ['t'], 'n/a'],
    ["SELECT a FROM t INTO OUTFILE '/tmp/x'", ['copy'], ['t'], 'n/a'],
    ["SELECT a FROM t INTO DUMPFILE '/tmp/x'", ['copy'], ['t'], 'n/a'],
    ['HANDLER t READ FIRST', ['select'], ['t'], 'n/a'],
    ['WITH x AS (SELECT * FROM cards) SELECT a FROM x', ['select'], ['cards'], 'n/a'],
  ];
  for (const [sql, kinds, tables, where] of cases) {
    const s = one(sql);
    t.same([s.kinds, s.tables, s.where], [kinds, tables, where], sql);
  }
});

t.test('multi-statement texts split where the server splits them', async (t) => {
  const r = classifyMysql('SELECT \'a;b\' AS x; SELECT "c;d"; -- ; DROP TABLE t\nSELECT 3 # ; DROP TABLE u\n; SELECT `e;f` FROM t');
  t.ok(r.ok);
  if (!r.ok) return;
  t.same(
    r.value.map((s) => s.kinds[0]),
    ['select', 'select', 'select', 'select'],
  );
  t.notOk(
    r.value.some((s) => s.kinds.includes('drop')),
    'comments hide nothing and are nothing',
  );
  const dashes = classifyMysql('SELECT 1 --; DROP TABLE t');
  t.ok(dashes.ok && dashes.value.some((s) => s.kinds.includes('drop')), '"--" without a space is no comment in MySQL');
});

t.test('executable comments are code, not comments', async (t) => {
  t.same(one('SELECT 1 /*! , card_number */ FROM cards').columns.output, ['card_number']);
  const r = classifyMysql('SELECT 1 /*!50000 ; DROP TABLE t */');
  t.ok(r.ok && r.value.some((s) => s.kinds.includes('drop')));
  const m = classifyMysql('SELECT 1 /*M!100100 ; DELETE FROM t */');
  t.ok(m.ok && m.value.some((s) => s.kinds.includes('delete')), 'MariaDB /*M! too');
  t.notOk(classifyMysql('SELECT 1 /*! unterminated').ok);
});

t.test('procedural code and dynamic SQL are opaque, with the kinds found inside', async (t) => {
  const proc = one('CREATE PROCEDURE p() BEGIN DROP TABLE t; DELETE FROM u; END');
  t.equal(proc.opaque, true);
  t.same(proc.kinds, ['create', 'drop', 'delete']);
  t.equal(proc.where, 'absent');
  const block = one('BEGIN NOT ATOMIC UPDATE t SET a = 1; END');
  t.same([block.kind, block.opaque], ['do', true]);
  t.ok(one('CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.a = 1').opaque);
  t.ok(one('CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO DELETE FROM t').opaque);
  t.ok(one('PREPARE s FROM @sql').opaque);
  t.ok(one("EXECUTE IMMEDIATE 'DROP TABLE t'").opaque);
  t.notOk(one("PREPARE s FROM 'SELECT 1'").opaque);
  const ev = one('ALTER EVENT e DO DELETE FROM t');
  t.same([ev.opaque, ev.kinds], [true, ['alter', 'delete']], 'ALTER EVENT … DO is procedural code');
});

t.test('keyword-table statements cannot carry another statement', async (t) => {
  const s = one('SET STATEMENT max_statement_time=1 FOR DROP TABLE cards');
  t.same([s.kind, s.kinds, s.tables], ['drop', ['drop', 'set'], ['cards']], 'SET STATEMENT … FOR is judged as its statement');
  t.same(one('SET STATEMENT max_statement_time=1 FOR SELECT card_number FROM cards').columns.output, ['card_number']);
  t.notOk(classifyMysql("SHOW TABLES WHERE (SELECT card_number FROM cards LIMIT 1) LIKE '4%'").ok, 'a SHOW with a subquery is not classified by keyword');
  t.notOk(classifyMysql('SET @a = 1 FOR DELETE FROM t').ok);
  t.same(one("SET SESSION sql_mode = 'ANSI', @a = 1").kinds, ['set']);
  t.same(one('SHOW FULL PROCESSLIST').columns.relations, ['information_schema.processlist']);
});

t.test('column use for restricted SQL', async (t) => {
  const c = (sql: string) => one(sql).columns;
  t.same(c('SELECT c.card_number AS x, id FROM cards c').output, ['card_number', 'id']);
  t.same(c('SELECT reverse(card_number) FROM cards').expr, ['card_number']);
  t.same(c("SELECT id FROM cards WHERE card_number LIKE '4%'").expr, ['card_number']);
  t.same(c('SELECT card_number FROM cards ORDER BY 1').expr, ['card_number']);
  t.same(c('SELECT card_number AS k FROM cards ORDER BY k').expr, ['card_number', 'k']);
  t.same(c('SELECT DISTINCT card_number FROM cards').expr, ['card_number']);
  t.same(c('SELECT card_number INTO @x FROM cards').expr, ['card_number'], 'INTO @var leaves the result set');
  t.same(c('SELECT a FROM t UNION SELECT b FROM u').expr, ['a', 'b']);
  t.same(c('SELECT x.card_number FROM (SELECT card_number FROM cards) x').expr, ['card_number']);
  t.same(c('SELECT * FROM cards').wholeRows, [], 'a top-level star over tables is traced by origin');
  t.same(c('SELECT * FROM (SELECT * FROM cards) x').wholeRows, ['cards', '?']);
  t.same(c('SELECT twice(id), COUNT(*) FROM t').functions, ['twice', 'count']);
  t.same(c('SELECT "card_number" FROM t').expr, ['card_number'], 'a double-quoted name may be an identifier (ANSI_QUOTES)');
  t.same(c('SELECT * FROM cards c, v').relations, ['cards', 'v']);
});

t.test('parse errors; NO_BACKSLASH_ESCAPES; units are cached and frozen', async (t) => {
  t.notOk(classifyMysql('SELEC 1').ok);
  t.notOk(classifyMysql("SELECT 'unterminated").ok);
  t.ok(classifyMysql("SELECT 'a\\'b'").ok);
  const nb = classifyMysql("SELECT 'a\\'; DROP TABLE t; -- '", { noBackslashEscapes: true });
  t.notOk(nb.ok, 'a backslash in a string under NO_BACKSLASH_ESCAPES is refused (the grammar would read it as an escape)');
  const a = mysqlUnits('SELECT 1 AS cached', { database: 'shop' });
  const b = mysqlUnits('SELECT 1 AS cached', { database: 'shop' });
  t.equal(a, b, 'cached');
  t.ok(a.ok && Object.isFrozen(a.value[0]));
  t.ok(a.ok && a.value[0].match.database === 'shop');
  t.same(classifyMysql('  ; -- nothing\n').ok && classifyMysql('  ; -- nothing\n'), { ok: true, value: [] });
});

t.test('statements differing only in literals share one classification, where literals cannot change it', async (t) => {
  const u = (sql: string) => {
    const r = mysqlUnits(sql);
    if (!r.ok) throw new Error(r.error.message);
    return r.value[0];
  };
  t.equal(u('SELECT c FROM shape_t WHERE id = 1').text, 'SELECT c FROM shape_t WHERE id = 1');
  t.equal(u('SELECT c FROM shape_t WHERE id = 2').text, 'SELECT c FROM shape_t WHERE id = 2', 'its own text');
  t.equal(u('DELETE FROM shape_t WHERE 1 = 2').match.where, 'present');
  t.equal(u('DELETE FROM shape_t WHERE 1 = 1').match.where, 'trivial', 'literal against literal is never a shared shape');
  t.equal(u('DELETE FROM shape_t WHERE id = 5').match.where, 'present');
  t.equal(u('DELETE FROM shape_t WHERE id = 6').match.where, 'present');
  const a = u('SELECT card_number, id FROM shape_t ORDER BY 2').context.columns as { expr: string[] };
  const b = u('SELECT card_number, id FROM shape_t ORDER BY 1').context.columns as { expr: string[] };
  t.same([a.expr, b.expr], [['id'], ['card_number']], 'ORDER BY positions are part of the shape');
  t.same(u("PREPARE s FROM 'SELECT 1'").match.statement, ['prepare']);
  t.same(u("PREPARE s FROM 'DELETE FROM t'").match.statement, ['prepare', 'delete'], 'a PREPARE string is never a shared shape');
});
