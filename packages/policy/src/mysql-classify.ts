/**
 * MySQL / MariaDB statement classification, with the same vocabulary as the PostgreSQL one
 * (`SqlStatement`: kinds, tables, where, opaque, `SqlColumnUse`), so that one rule set reads
 * the same on both connectors and `restrictedSqlViolation` works unchanged.
 *
 * Three layers:
 *
 * 1. A MySQL lexer of our own splits the text into statements the way the server does
 *    (strings with backslash escapes unless NO_BACKSLASH_ESCAPES is on, backtick
 *    identifiers, `#`, `-- ` and `/* *\/` comments) and unwraps *executable comments*
 *    (`/*! … *\/`, `/*!50001 … *\/`, MariaDB `/*M! … *\/`): the server runs their contents, so
 *    they are judged as code, never skipped as comments.
 * 2. Each statement is parsed with node-sql-parser's MariaDB grammar (then its MySQL one) and
 *    the tree is walked for kinds, tables, WHERE and column use.
 * 3. Statements that grammar does not cover but whose kind MySQL's own grammar fixes by their
 *    first keywords, and that cannot carry another statement, are classified by those keywords
 *    (SHOW, SET NAMES, SAVEPOINT, USE, FLUSH, …). Procedural code (CREATE PROCEDURE / FUNCTION /
 *    TRIGGER / EVENT, BEGIN NOT ATOMIC, `PREPARE s FROM @var`, EXECUTE IMMEDIATE) is `opaque`,
 *    with the kinds of every statement keyword found in it. Anything else is a parse error.
 */
import { createRequire } from 'node:module';
import type { Result, Unit } from '@gatehouse/core';
import { err, ok } from '@gatehouse/core';
import type { SqlColumnUse } from './restricted-sql.js';
import type { SqlStatement, SqlWhere } from './sql-classify.js';

type Obj = Record<string, unknown>;
interface SqlParser {
  parse(sql: string, opt: { database: string }): { tableList: string[]; ast: Obj | Obj[] };
}

let parser: SqlParser | null = null;
function sqlParser(): SqlParser {
  if (!parser) {
    // node-sql-parser is CommonJS; its full build holds every dialect's grammar.
    const require = createRequire(import.meta.url);
    const mod = require('node-sql-parser') as { Parser: new () => SqlParser };
    parser = new mod.Parser();
  }
  return parser;
}

export interface MysqlClassifyOptions {
  /** The session runs with NO_BACKSLASH_ESCAPES (server status flag): `\` is not an escape in strings. */
  noBackslashEscapes?: boolean;
}

/** Extra facts a MySQL statement carries for the connector, on `unit.context`. */
export interface MysqlStatement extends SqlStatement {
  /** LOAD DATA LOCAL INFILE: the server will ask the client for a file. */
  localInfile: boolean;
  /** USE db: the default database afterwards. */
  use?: string;
}

// ---------------------------------------------------------------------------------------
// Lexer

export interface Token {
  /** w word, q backtick identifier, s string ('…' or "…"), n number, v @var / @@var, p punctuation, ? placeholder */
  t: 'w' | 'q' | 's' | 'n' | 'v' | 'p' | '?';
  /** Words upper-cased; identifiers and strings unquoted; punctuation as is. */
  v: string;
  /** Offsets in the original text. */
  start: number;
  end: number;
  /** A double-quoted string (an identifier under ANSI_QUOTES). */
  dq?: boolean;
  /** Words as written (case kept). */
  raw?: string;
}

interface Lexed {
  tokens: Token[];
  /** The text with executable comments unwrapped (same length: markers become spaces). */
  code: string;
}

const isWordChar = (c: number) => (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c === 36 || c >= 128;
const isSpace = (c: number) => c === 32 || c === 9 || c === 10 || c === 13 || c === 11 || c === 12;

/** Tokens of `sql`; throws SyntaxError for an unterminated string, identifier or comment. */
export function lexMysql(sql: string, o: MysqlClassifyOptions = {}): Lexed {
  const tokens: Token[] = [];
  const code = sql.split('');
  const n = sql.length;
  let i = 0;
  let inExec = false; // inside /*! … */: the closing */ is only a marker
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (isSpace(c)) {
      i++;
      continue;
    }
    if (c === 0x23 /* # */ || (c === 0x2d && sql.charCodeAt(i + 1) === 0x2d && (i + 2 >= n || isSpace(sql.charCodeAt(i + 2)) || sql.charCodeAt(i + 2) < 32))) {
      const eol = sql.indexOf('\n', i);
      for (let k = i; k < (eol < 0 ? n : eol); k++) code[k] = ' ';
      i = eol < 0 ? n : eol + 1;
      continue;
    }
    if (c === 0x2a && inExec && sql.charCodeAt(i + 1) === 0x2f) {
      code[i] = code[i + 1] = ' ';
      inExec = false;
      i += 2;
      continue;
    }
    if (c === 0x2f && sql.charCodeAt(i + 1) === 0x2a) {
      // /*! version? … */ and /*M! version? … */ run as code; other comments are skipped.
      const m = /^\/\*(M?)!(\d{5,6})?/.exec(sql.slice(i, i + 10));
      if (m) {
        if (inExec) throw new SyntaxError('nested executable comment');
        for (let k = i; k < i + m[0].length; k++) code[k] = ' ';
        i += m[0].length;
        inExec = true;
        continue;
      }
      const close = sql.indexOf('*/', i + 2);
      if (close < 0) throw new SyntaxError('unterminated comment');
      for (let k = i; k < close + 2; k++) code[k] = ' ';
      i = close + 2;
      continue;
    }
    const start = i;
    if (c === 0x27 || c === 0x22) {
      const q = c;
      let v = '';
      i++;
      for (;;) {
        if (i >= n) throw new SyntaxError('unterminated string');
        const d = sql.charCodeAt(i);
        if (d === 0x5c && !o.noBackslashEscapes) {
          v += sql[i + 1] ?? '';
          i += 2;
          continue;
        }
        if (d === q) {
          if (sql.charCodeAt(i + 1) === q) {
            v += sql[i];
            i += 2;
            continue;
          }
          i++;
          break;
        }
        v += sql[i++];
      }
      tokens.push({ t: 's', v, start, end: i, ...(q === 0x22 ? { dq: true } : {}) });
      continue;
    }
    if (c === 0x60) {
      let v = '';
      i++;
      for (;;) {
        if (i >= n) throw new SyntaxError('unterminated identifier');
        if (sql.charCodeAt(i) === 0x60) {
          if (sql.charCodeAt(i + 1) === 0x60) {
            v += '`';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        v += sql[i++];
      }
      tokens.push({ t: 'q', v, start, end: i });
      continue;
    }
    if (c === 0x40) {
      i++;
      if (sql.charCodeAt(i) === 0x40) i++;
      if (sql.charCodeAt(i) === 0x60 || sql.charCodeAt(i) === 0x27 || sql.charCodeAt(i) === 0x22) {
        const q = sql[i];
        const close = sql.indexOf(q, i + 1);
        if (close < 0) throw new SyntaxError('unterminated variable name');
        i = close + 1;
      } else while (i < n && (isWordChar(sql.charCodeAt(i)) || sql.charCodeAt(i) === 0x2e)) i++;
      tokens.push({ t: 'v', v: sql.slice(start, i), start, end: i });
      continue;
    }
    if (isWordChar(c)) {
      while (i < n && isWordChar(sql.charCodeAt(i))) i++;
      const w = sql.slice(start, i);
      tokens.push({ t: /^\d/.test(w) && /^[0-9.eE]+$|^0x[0-9a-fA-F]+$|^\d+$/.test(w) ? 'n' : 'w', v: /^\d/.test(w) ? w : w.toUpperCase(), start, end: i, raw: w });
      continue;
    }
    i++;
    tokens.push({ t: c === 0x3f ? '?' : 'p', v: sql[start], start, end: i });
  }
  if (inExec) throw new SyntaxError('unterminated executable comment');
  return { tokens, code: code.join('') };
}

// ---------------------------------------------------------------------------------------
// Splitting

/** Statement heads whose body runs later or elsewhere: everything to the end of the text is one unit. */
function compoundHead(tokens: Token[], from: number): boolean {
  const w = (k: number) => (tokens[from + k]?.t === 'w' ? tokens[from + k].v : '');
  const first = w(0);
  if (first === 'BEGIN') return w(1) === 'NOT' && w(2) === 'ATOMIC';
  if (['IF', 'WHILE', 'LOOP', 'REPEAT', 'DECLARE', 'FOR'].includes(first) && tokens[from + 1]?.v !== '(') return first !== 'IF' || w(1) !== 'EXISTS';
  if ((tokens[from]?.t === 'w' || tokens[from]?.t === 'q') && tokens[from + 1]?.v === ':' && w(2) === 'BEGIN') return true; // label: BEGIN
  if (first === 'CREATE') {
    for (let k = 1; k < 12 && from + k < tokens.length; k++) {
      const t = tokens[from + k];
      if (t.v === ';' || t.v === '(') return false;
      if (t.t === 'w' && ['PROCEDURE', 'FUNCTION', 'TRIGGER', 'EVENT', 'PACKAGE'].includes(t.v)) return true;
      if (t.t === 'w' && ['TABLE', 'VIEW', 'INDEX', 'DATABASE', 'SCHEMA', 'USER', 'ROLE', 'SEQUENCE', 'SERVER', 'TABLESPACE'].includes(t.v)) return false;
    }
  }
  return false;
}

interface Piece {
  tokens: Token[];
  start: number;
  end: number;
  compound: boolean;
}

function split(tokens: Token[]): Piece[] {
  const out: Piece[] = [];
  let i = 0;
  while (i < tokens.length) {
    if (tokens[i].v === ';' && tokens[i].t === 'p') {
      i++;
      continue;
    }
    if (compoundHead(tokens, i)) {
      const body = tokens.slice(i);
      out.push({ tokens: body, start: body[0].start, end: body[body.length - 1].end, compound: true });
      break;
    }
    let j = i;
    while (j < tokens.length && !(tokens[j].t === 'p' && tokens[j].v === ';')) j++;
    const part = tokens.slice(i, j);
    out.push({ tokens: part, start: part[0].start, end: part[part.length - 1].end, compound: false });
    i = j;
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Entry points

/**
 * Classify every statement of `sql`. An empty text gives []. A statement that neither the
 * grammar nor the keyword table covers gives `policy.parse`.
 */
export function classifyMysql(sql: string, o: MysqlClassifyOptions = {}): Result<MysqlStatement[]> {
  let lexed: Lexed;
  try {
    lexed = lexMysql(sql, o);
  } catch (e) {
    return err('policy.parse', `SQL parse error: ${(e as Error).message}`);
  }
  return classifyLexed(sql, lexed, o);
}

function classifyLexed(sql: string, lexed: Lexed, o: MysqlClassifyOptions): Result<MysqlStatement[]> {
  if (o.noBackslashEscapes && lexed.tokens.some((t) => t.t === 's' && sql.slice(t.start, t.end).includes('\\'))) {
    // The grammar below reads backslashes as escapes; under NO_BACKSLASH_ESCAPES the server does not.
    return err('policy.parse', 'SQL parse error: a backslash in a string literal under NO_BACKSLASH_ESCAPES cannot be classified');
  }
  const out: MysqlStatement[] = [];
  for (const p of split(lexed.tokens)) {
    const text = sql.slice(p.start, p.end).trim();
    const code = lexed.code.slice(p.start, p.end).trim();
    const s = p.compound
      ? opaqueStatement(p.tokens, text, procedureKind(p.tokens), 'procedural code (a routine, trigger, event or compound statement) is not analysed statement by statement')
      : classifyOne(p.tokens, text, code);
    if (!s.ok) return s;
    out.push(s.value);
  }
  return ok(out);
}

function procedureKind(tokens: Token[]): string {
  return tokens[0]?.v === 'CREATE' ? 'create' : 'do';
}

function classifyOne(tokens: Token[], text: string, code: string): Result<MysqlStatement> {
  const head = tokens[0]?.t === 'w' ? tokens[0].v : '';
  const special = keywordStatement(head, tokens, text);
  if (special) return special;
  let parsed: { tableList: string[]; ast: Obj | Obj[] } | null = null;
  let firstError = '';
  for (const database of ['MariaDB', 'MySQL']) {
    try {
      parsed = sqlParser().parse(code, { database });
      break;
    } catch (e) {
      firstError ||= (e as Error).message;
    }
  }
  if (!parsed) {
    const fallback = keywordFallback(head, tokens, text);
    if (fallback) return ok(fallback);
    return err('policy.parse', `SQL parse error: ${firstError.split('\n')[0].slice(0, 300)}`);
  }
  const asts = Array.isArray(parsed.ast) ? parsed.ast : [parsed.ast];
  if (asts.length !== 1) return err('policy.parse', 'SQL parse error: the statement splits differently');
  return ok(fromAst(asts[0], parsed.tableList, tokens, text));
}

/** Kinds of statement keywords, for opaque bodies and the keyword table. */
const KEYWORD_KINDS: Record<string, string> = {
  SELECT: 'select',
  INSERT: 'insert',
  REPLACE: 'insert',
  UPDATE: 'update',
  DELETE: 'delete',
  CREATE: 'create',
  ALTER: 'alter',
  DROP: 'drop',
  TRUNCATE: 'truncate',
  GRANT: 'grant',
  REVOKE: 'revoke',
  RENAME: 'alter',
  CALL: 'call',
  LOAD: 'copy',
  PREPARE: 'prepare',
  EXECUTE: 'execute',
  DEALLOCATE: 'deallocate',
  LOCK: 'lock',
  UNLOCK: 'lock',
  HANDLER: 'select',
  SET: 'set',
  COMMIT: 'commit',
  ROLLBACK: 'rollback',
  SAVEPOINT: 'savepoint',
  RELEASE: 'savepoint',
  START: 'begin',
  SHOW: 'show',
  DESCRIBE: 'show',
  DESC: 'show',
  EXPLAIN: 'explain',
  USE: 'set',
  FLUSH: 'other',
  KILL: 'other',
  RESET: 'other',
  PURGE: 'other',
  INSTALL: 'other',
  UNINSTALL: 'other',
  OPTIMIZE: 'other',
  REPAIR: 'other',
  CHECK: 'other',
  CHECKSUM: 'other',
  ANALYZE: 'analyze',
  XA: 'other',
  SIGNAL: 'other',
  RESIGNAL: 'other',
  GET: 'other',
  HELP: 'show',
  BINLOG: 'other',
  CACHE: 'other',
  CHANGE: 'other',
  SHUTDOWN: 'other',
  BACKUP: 'other',
  DO: 'select',
  TABLE: 'select',
  VALUES: 'select',
  BEGIN: 'begin',
  WITH: 'select',
};
/** Words that start (or run) a statement: a keyword-table statement holding one is not for the keyword table. */
const CARRIES_STATEMENT = new Set([
  'FOR',
  'SELECT',
  'INSERT',
  'UPDATE',
  'DELETE',
  'REPLACE',
  'DROP',
  'CREATE',
  'ALTER',
  'TRUNCATE',
  'CALL',
  'LOAD',
  'GRANT',
  'REVOKE',
  'RENAME',
  'HANDLER',
  'PREPARE',
  'EXECUTE',
  'DO',
  'WITH',
  'VALUES',
  'TABLE',
]);
const DATA_CHANGING = new Set(['insert', 'update', 'delete', 'create', 'alter', 'drop', 'truncate', 'grant', 'revoke', 'call', 'copy', 'prepare', 'execute', 'lock', 'set']);

const NO_COLUMNS: SqlColumnUse = Object.freeze({
  output: Object.freeze([]),
  expr: Object.freeze([]),
  wholeRows: Object.freeze([]),
  functions: Object.freeze([]),
  relations: Object.freeze([]),
});

function statement(kind: string, kinds: string[], tables: string[], where: SqlWhere, text: string, columns: SqlColumnUse, extra: Partial<MysqlStatement> = {}): MysqlStatement {
  return { kind, kinds: [...new Set(kinds)], tables, where, text, opaque: false, opaqueReason: '', columns, localInfile: false, ...extra };
}

/** Procedural code: opaque, with every statement keyword it contains as a kind and the tables named after FROM/INTO/UPDATE/TABLE/JOIN. */
function opaqueStatement(tokens: Token[], text: string, kind: string, why: string): Result<MysqlStatement> {
  const kinds = new Set([kind]);
  const tables = new Set<string>();
  let writes = false;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (t.t !== 'w') continue;
    const k = KEYWORD_KINDS[t.v];
    if (k && DATA_CHANGING.has(k) && t.v !== 'SET') kinds.add(k);
    if (t.v === 'UPDATE' || t.v === 'DELETE') writes = true;
    if (['FROM', 'INTO', 'UPDATE', 'TABLE', 'JOIN'].includes(t.v)) {
      const name = qualified(tokens, i + 1);
      if (name) tables.add(name.name);
    }
  }
  const relations = Object.freeze([...tables].map((x) => x.toLowerCase()));
  return ok({
    ...statement(kind, [...kinds], [...tables], writes ? 'absent' : 'n/a', text, Object.freeze({ ...NO_COLUMNS, relations })),
    opaque: true,
    opaqueReason: why,
  });
}

/** `db.name` / `name` at tokens[i] (words or backtick identifiers). */
function qualified(tokens: Token[], i: number): { name: string; next: number } | null {
  const a = tokens[i];
  if (!a || (a.t !== 'w' && a.t !== 'q') || (a.t === 'w' && RESERVED_AFTER.has(a.v))) return null;
  const av = a.t === 'q' ? a.v : rawWord(a);
  if (tokens[i + 1]?.v === '.' && (tokens[i + 2]?.t === 'w' || tokens[i + 2]?.t === 'q')) {
    const b = tokens[i + 2];
    return { name: `${av}.${b.t === 'q' ? b.v : rawWord(b)}`, next: i + 3 };
  }
  return { name: av, next: i + 1 };
}
const RESERVED_AFTER = new Set(['SELECT', 'WHERE', 'SET', 'VALUES', 'IF', 'NOT', 'EXISTS', 'IGNORE', 'LOW_PRIORITY', 'QUICK', 'DELAYED', 'HIGH_PRIORITY', 'TEMPORARY', 'STATUS']);
/** Words are upper-cased by the lexer; names keep the case the caller wrote. */
function rawWord(t: Token): string {
  return t.raw ?? t.v;
}

/**
 * Statements classified by their keywords before the grammar is tried: those it does not
 * cover, and those whose meaning here differs (PREPARE, EXECUTE, LOAD DATA LOCAL).
 */
function keywordStatement(head: string, tokens: Token[], text: string): Result<MysqlStatement> | null {
  const w = (k: number) => (tokens[k]?.t === 'w' ? tokens[k].v : '');
  switch (head) {
    case 'PREPARE': {
      // PREPARE s FROM 'text' is judged as that text; FROM @var is dynamic SQL.
      if (w(2) !== 'FROM') return null;
      const src = tokens[3];
      if (src?.t === 's' && tokens.length === 4) {
        const inner = classifyMysql(src.v);
        if (!inner.ok) return inner;
        if (inner.value.length !== 1) return err('policy.parse', 'SQL parse error: PREPARE of more than one statement');
        const s = inner.value[0];
        return ok({ ...s, kind: 'prepare', kinds: [...new Set(['prepare', ...s.kinds.filter((x) => x !== 'select')])], text });
      }
      return opaqueStatement(tokens, text, 'prepare', 'dynamic SQL (PREPARE from a variable or expression)');
    }
    case 'EXECUTE':
      if (w(1) === 'IMMEDIATE') return opaqueStatement(tokens, text, 'execute', 'dynamic SQL (EXECUTE IMMEDIATE)');
      // EXECUTE s [USING @a, …]: the statement was judged when prepared.
      return ok(statement('execute', ['execute'], [], 'n/a', text, NO_COLUMNS));
    case 'DEALLOCATE':
      return ok(statement('deallocate', ['deallocate'], [], 'n/a', text, NO_COLUMNS));
    case 'DROP':
      if (w(1) === 'PREPARE') return ok(statement('deallocate', ['deallocate'], [], 'n/a', text, NO_COLUMNS));
      return null;
    case 'LOAD': {
      // LOAD DATA [LOW_PRIORITY|CONCURRENT] [LOCAL] INFILE 'f' [REPLACE|IGNORE] INTO TABLE t …
      if (w(1) !== 'DATA' && w(1) !== 'XML') return null;
      let k = 2;
      while (w(k) === 'LOW_PRIORITY' || w(k) === 'CONCURRENT') k++;
      const local = w(k) === 'LOCAL';
      const tables: string[] = [];
      const into = tokens.findIndex((t, i) => t.t === 'w' && t.v === 'TABLE' && tokens[i - 1]?.v === 'INTO');
      if (into > 0) {
        const q = qualified(tokens, into + 1);
        if (q) tables.push(q.name);
      }
      const kinds = ['copy', 'insert', ...(tokens.some((t) => t.t === 'w' && t.v === 'REPLACE') ? ['delete'] : [])];
      return ok(
        statement('copy', kinds, tables, 'n/a', text, Object.freeze({ ...NO_COLUMNS, relations: Object.freeze(tables.map((x) => x.toLowerCase())) }), { localInfile: local }),
      );
    }
    case 'EXPLAIN':
    case 'DESCRIBE':
    case 'DESC':
    case 'ANALYZE': {
      // EXPLAIN [EXTENDED|PARTITIONS|FORMAT=…] <statement>; MariaDB's ANALYZE <statement> runs it.
      let k = 1;
      while (['EXTENDED', 'PARTITIONS', 'FORMAT', '=', 'JSON', 'TRADITIONAL', 'TREE', 'ANALYZE'].includes(tokens[k]?.v ?? '') && !(head === 'ANALYZE' && k > 1)) k++;
      const inner = tokens[k];
      if (!inner || inner.t !== 'w' || !['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'REPLACE', 'WITH', 'TABLE', 'VALUES'].includes(inner.v)) return null;
      const c = classifyMysql(text.slice(inner.start - tokens[0].start));
      if (!c.ok) return c;
      if (c.value.length !== 1) return err('policy.parse', `SQL parse error: ${head} of more than one statement`);
      const s = c.value[0];
      const kind = head === 'ANALYZE' ? 'analyze' : 'explain';
      return ok({ ...s, kind, kinds: [...new Set([kind, ...s.kinds.filter((x) => x !== 'select')])], text });
    }
    case 'SET': {
      // MariaDB SET STATEMENT var = value [, …] FOR <statement>: the statement runs.
      if (w(1) !== 'STATEMENT') return null;
      const f = tokens.findIndex((t, i) => i > 1 && t.t === 'w' && t.v === 'FOR');
      if (f < 0 || !tokens[f + 1]) return err('policy.parse', 'SQL parse error: SET STATEMENT without FOR <statement>');
      const c = classifyMysql(text.slice(tokens[f + 1].start - tokens[0].start));
      if (!c.ok) return c;
      if (c.value.length !== 1) return err('policy.parse', 'SQL parse error: SET STATEMENT … FOR more than one statement');
      const s = c.value[0];
      return ok({ ...s, kinds: [...new Set([...s.kinds, 'set'])], text });
    }
    case 'HANDLER': {
      // HANDLER t OPEN / READ …: reads whole rows of a table.
      const q = qualified(tokens, 1);
      const tables = q ? [q.name] : [];
      const rel = tables.map((x) => x.toLowerCase());
      return ok(
        statement('select', ['select'], tables, 'n/a', text, Object.freeze({ ...NO_COLUMNS, wholeRows: Object.freeze(rel.length ? rel : ['?']), relations: Object.freeze(rel) })),
      );
    }
  }
  return null;
}

/**
 * Statements the grammar did not parse whose kind MySQL fixes by their first keywords and
 * which cannot carry another statement or read a table's values into their own result.
 */
function keywordFallback(head: string, tokens: Token[], text: string): MysqlStatement | null {
  const w = (k: number) => (tokens[k]?.t === 'w' ? tokens[k].v : '');
  switch (head) {
    case 'SHOW': {
      // SHOW … WHERE / LIKE may hold a subquery: that reads tables, so it is not for the keyword table.
      if (tokens.some((t) => t.t === 'w' && t.v === 'SELECT')) return null;
      // SHOW [FULL] PROCESSLIST shows other sessions' statement texts.
      const processlist = tokens.some((t) => t.t === 'w' && t.v === 'PROCESSLIST');
      const rel = processlist ? ['information_schema.processlist'] : [];
      return statement('show', ['show'], [], 'n/a', text, processlist ? Object.freeze({ ...NO_COLUMNS, relations: Object.freeze(rel) }) : NO_COLUMNS);
    }
    case 'SET':
      // SET NAMES x [COLLATE y] / SET CHARACTER SET x / SET [scope] var = literal, …: no expression that reads anything.
      if (
        tokens.every((t) => t.t !== 'p' || t.v === '=' || t.v === ',' || t.v === '.' || t.v === '-' || t.v === ':') &&
        !tokens.some((t, i) => i > 0 && t.t === 'w' && CARRIES_STATEMENT.has(t.v))
      ) {
        return statement('set', ['set'], [], 'n/a', text, NO_COLUMNS);
      }
      return null;
    case 'SAVEPOINT':
      return statement('savepoint', ['savepoint'], [], 'n/a', text, NO_COLUMNS);
    case 'RELEASE':
      return w(1) === 'SAVEPOINT' ? statement('savepoint', ['savepoint'], [], 'n/a', text, NO_COLUMNS) : null;
    case 'ROLLBACK':
    case 'COMMIT':
      return tokens.every((t) => t.t === 'w' || t.t === 'q' || t.t === 'n') ? statement(head.toLowerCase(), [head.toLowerCase()], [], 'n/a', text, NO_COLUMNS) : null;
    case 'BEGIN':
    case 'START':
      return tokens.every((t) => t.t === 'w' || (t.t === 'p' && t.v === ',')) ? statement('begin', ['begin'], [], 'n/a', text, NO_COLUMNS) : null;
    case 'USE': {
      const q = tokens.length === 2 ? qualified(tokens, 1) : null;
      return q ? statement('set', ['set'], [], 'n/a', text, NO_COLUMNS, { use: q.name }) : null;
    }
    case 'FLUSH':
    case 'KILL':
    case 'RESET':
    case 'PURGE':
    case 'INSTALL':
    case 'UNINSTALL':
    case 'XA':
    case 'HELP':
    case 'CHECKSUM':
    case 'OPTIMIZE':
    case 'REPAIR':
    case 'CHECK':
    case 'ANALYZE':
    case 'UNLOCK':
    case 'BINLOG':
    case 'SHUTDOWN':
    case 'CACHE':
    case 'BACKUP': {
      if (tokens.some((t) => t.t === 'w' && t.v === 'SELECT')) return null;
      const kind = KEYWORD_KINDS[head];
      const tables: string[] = [];
      if (['OPTIMIZE', 'REPAIR', 'CHECK', 'ANALYZE', 'CHECKSUM'].includes(head)) {
        for (let i = 1; i < tokens.length; i++) {
          if (tokens[i].v === 'TABLE' || tokens[i].v === ',') {
            const q = qualified(tokens, i + 1);
            if (q) tables.push(q.name);
          }
        }
      }
      return statement(kind, [kind], tables, 'n/a', text, Object.freeze({ ...NO_COLUMNS, relations: Object.freeze(tables.map((x) => x.toLowerCase())) }));
    }
    case 'ALTER':
    case 'DROP':
    case 'CREATE': {
      // Routines, events, servers, users, roles, sequences the grammar does not know: the kind
      // is the keyword; the object is not a table (DROP PROCEDURE p, ALTER EVENT e …).
      const object = w(1) === 'OR' ? w(3) : w(1) === 'DEFINER' || w(1) === 'IF' ? '' : w(1);
      if (
        ['PROCEDURE', 'FUNCTION', 'EVENT', 'TRIGGER', 'SERVER', 'USER', 'ROLE', 'PACKAGE', 'LOGFILE', 'TABLESPACE', 'RESOURCE', 'SPATIAL'].includes(object) &&
        head !== 'CREATE'
      ) {
        const kind = KEYWORD_KINDS[head];
        // ALTER EVENT … DO <statement>, a routine with a body: procedural code.
        if (tokens.some((t, i) => i > 1 && t.t === 'w' && (t.v === 'DO' || t.v === 'BEGIN' || CARRIES_STATEMENT.has(t.v)))) {
          const o = opaqueStatement(tokens, text, kind, 'procedural code (an event or routine body) is not analysed statement by statement');
          return o.ok ? o.value : null;
        }
        return statement(kind, [kind], [], 'n/a', text, NO_COLUMNS);
      }
      if (head === 'CREATE' && ['USER', 'ROLE', 'SERVER'].includes(object)) return statement('create', ['create'], [], 'n/a', text, NO_COLUMNS);
      return null;
    }
  }
  return null;
}

// ---------------------------------------------------------------------------------------
// The parse tree

interface Walk {
  kinds: Set<string>;
  writes: number;
  unfiltered: number;
  trivial: number;
  output: Set<string>;
  expr: Set<string>;
  wholeRows: Set<string>;
  functions: Set<string>;
  tables: Set<string>;
  ctes: Set<string>;
  opaque: string | null;
}

/** FROM items visible by name: the relation they stand for ('?' for derived tables, CTEs, table functions). */
interface Scope {
  items: { names: string[]; target: string }[];
  parent: Scope | null;
}

const enum Mode {
  /** The outermost plain SELECT: bare columns are traced by origin. */
  Output,
  /** Anything else (subqueries, derived tables and CTEs, whose output MySQL reports under their alias). */
  Expr,
}

function fromAst(ast: Obj, tableList: string[], tokens: Token[], text: string): MysqlStatement {
  const w: Walk = {
    kinds: new Set(),
    writes: 0,
    unfiltered: 0,
    trivial: 0,
    output: new Set(),
    expr: new Set(),
    wholeRows: new Set(),
    functions: new Set(),
    tables: new Set(),
    ctes: new Set(),
    opaque: null,
  };
  const kind = stmtKind(ast, tokens);
  w.kinds.add(kind);
  walkStatement(ast, w, null, true);
  for (const e of tableList) {
    const [op, db, table] = e.split('::');
    if (!table || table === '(.*)' || table === 'null' || op === 'use') continue;
    if ((db === 'null' || !db) && w.ctes.has(table.toLowerCase())) continue;
    w.tables.add(db && db !== 'null' ? `${db}.${table}` : table);
  }
  // Double-quoted strings are identifiers under sql_mode ANSI_QUOTES: for masking, count them as possible column names.
  for (const t of tokens) if (t.dq && /^[A-Za-z_$][\w$]*$/.test(t.v)) w.expr.add(t.v.toLowerCase());
  const tables = [...w.tables];
  return {
    kind,
    kinds: [...w.kinds],
    tables,
    where: w.writes === 0 ? 'n/a' : w.unfiltered > 0 ? 'absent' : w.trivial > 0 ? 'trivial' : 'present',
    text,
    opaque: w.opaque !== null,
    opaqueReason: w.opaque ?? '',
    columns: Object.freeze({
      output: Object.freeze([...w.output]),
      expr: Object.freeze([...w.expr]),
      wholeRows: Object.freeze([...w.wholeRows]),
      functions: Object.freeze([...w.functions]),
      relations: Object.freeze([...new Set(tables.map((t) => t.toLowerCase()))]),
    }),
    localInfile: ast.type === 'load_data' && ast.local != null,
    ...(ast.type === 'use' && typeof ast.db === 'string' ? { use: ast.db } : {}),
  };
}

const TYPE_KINDS: Record<string, string> = {
  select: 'select',
  insert: 'insert',
  replace: 'insert',
  update: 'update',
  delete: 'delete',
  create: 'create',
  alter: 'alter',
  drop: 'drop',
  truncate: 'truncate',
  grant: 'grant',
  revoke: 'revoke',
  rename: 'alter',
  call: 'call',
  set: 'set',
  show: 'show',
  desc: 'show',
  use: 'set',
  explain: 'explain',
  lock: 'lock',
  unlock: 'lock',
  load_data: 'copy',
  declare: 'other',
};

function stmtKind(ast: Obj, tokens: Token[]): string {
  const type = String(ast.type);
  if (type === 'transaction') {
    const value: unknown = ((ast.expr as Obj | undefined)?.action as Obj | undefined)?.value;
    const action = typeof value === 'string' ? value.toLowerCase() : '';
    if (action === 'begin' || action === 'start') return 'begin';
    if (action === 'commit') return 'commit';
    if (action === 'rollback') return 'rollback';
    return 'other';
  }
  if (type === 'select') {
    const into = ast.into as Obj | undefined;
    const keyword = typeof into?.keyword === 'string' ? into.keyword.toLowerCase() : '';
    if (keyword === 'outfile' || keyword === 'dumpfile') return 'copy';
  }
  return TYPE_KINDS[type] ?? KEYWORD_KINDS[tokens[0]?.v ?? ''] ?? 'other';
}

function isObj(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function addTableName(w: Walk, t: Obj | undefined): void {
  if (!t) return;
  const table = t.table ?? t.view ?? t.name;
  if (typeof table !== 'string' || table === '') return;
  const db = typeof t.db === 'string' && t.db ? t.db : null;
  w.tables.add(db ? `${db}.${table}` : table);
}

/** One statement node (the top level, an EXPLAIN's target, a CTE or derived table body). */
function walkStatement(ast: Obj, w: Walk, scope: Scope | null, top: boolean): void {
  const type = String(ast.type);
  if (!top && TYPE_KINDS[type] && type !== 'select') w.kinds.add(TYPE_KINDS[type]);
  switch (type) {
    case 'select':
      walkSelect(ast, w, scope, top ? Mode.Output : Mode.Expr);
      return;
    case 'insert':
    case 'replace': {
      if (type === 'replace') w.kinds.add('delete'); // REPLACE deletes the rows it conflicts with
      const inner = scopeOf(ast.table, w, scope);
      if (ast.on_duplicate_update) w.kinds.add('update');
      const values = ast.values as Obj | undefined;
      if (values && values.type === 'select') walkSelect(values, w, inner, Mode.Expr);
      else if (isObj(values) && isObj(values.ast)) walkStatement(values.ast, w, inner, false);
      else walkExpr(values, w, inner);
      walkExpr(ast.on_duplicate_update, w, inner);
      walkExpr(ast.set, w, inner);
      walkExpr(ast.returning, w, inner);
      return;
    }
    case 'update':
    case 'delete': {
      withClause(ast, w, scope);
      w.writes++;
      if (!ast.where) w.unfiltered++;
      else if (isTrivialMysql(ast.where)) w.trivial++;
      const inner = scopeOf(ast.table, w, scope);
      if (Array.isArray(ast.from)) inner.items.push(...scopeOf(ast.from, w, scope).items);
      for (const f of [...(Array.isArray(ast.table) ? (ast.table as Obj[]) : []), ...(Array.isArray(ast.from) ? (ast.from as Obj[]) : [])]) walkExpr(f.on, w, inner);
      walkExpr(ast.set, w, inner);
      walkExpr(ast.where, w, inner);
      walkExpr(ast.orderby, w, inner);
      walkExpr(ast.returning, w, inner);
      return;
    }
    case 'create': {
      for (const t of (Array.isArray(ast.table) ? ast.table : []) as Obj[]) addTableName(w, t);
      if (isObj(ast.view)) addTableName(w, ast.view);
      const q = (ast.query_expr ?? ast.select) as Obj | undefined;
      if (isObj(q)) walkStatement(isObj(q.ast) ? q.ast : q, w, scope, false);
      // CREATE TABLE … definitions (defaults, CHECK, generated columns) read no rows.
      return;
    }
    case 'drop':
    case 'truncate':
      if (ast.keyword === 'table' || ast.keyword === 'view' || ast.keyword === undefined) for (const t of (Array.isArray(ast.name) ? ast.name : []) as Obj[]) addTableName(w, t);
      return;
    case 'alter':
      for (const t of (Array.isArray(ast.table) ? ast.table : []) as Obj[]) addTableName(w, t);
      return;
    case 'rename':
      for (const pair of (Array.isArray(ast.table) ? ast.table : []) as Obj[][]) for (const t of Array.isArray(pair) ? pair : []) addTableName(w, t);
      return;
    case 'explain':
      if (isObj(ast.expr)) walkStatement(ast.expr, w, scope, top);
      return;
    case 'call': {
      const fn = ast.expr as Obj | undefined;
      const name = functionName(fn);
      if (name) w.functions.add(name);
      walkExpr((fn?.args as Obj | undefined)?.value, w, scope);
      return;
    }
    case 'lock':
      for (const l of (Array.isArray(ast.tables) ? ast.tables : []) as Obj[]) addTableName(w, l.table as Obj);
      return;
    default:
      walkExpr(ast, w, scope);
  }
}

function withClause(ast: Obj, w: Walk, scope: Scope | null): void {
  const withs = ast.with;
  if (!Array.isArray(withs)) return;
  for (const c of withs as Obj[]) {
    const name = (c.name as Obj | undefined)?.value ?? c.name;
    if (typeof name === 'string') w.ctes.add(name.toLowerCase());
    const stmt = c.stmt as Obj | undefined;
    const body = isObj(stmt?.ast) ? stmt.ast : stmt;
    if (isObj(body)) walkStatement(body, w, scope, false);
  }
}

/** FROM / target items: names → relations; derived tables are walked (their output is untraceable). */
function scopeOf(items: unknown, w: Walk, parent: Scope | null): Scope {
  const scope: Scope = { items: [], parent };
  for (const it of (Array.isArray(items) ? items : []) as Obj[]) {
    if (!isObj(it)) continue;
    const alias = typeof it.as === 'string' ? it.as : null;
    if (typeof it.table === 'string') {
      const db = typeof it.db === 'string' && it.db ? it.db : null;
      const written = db ? `${db}.${it.table}` : it.table;
      const cte = !db && w.ctes.has(it.table.toLowerCase());
      scope.items.push({ names: alias ? [alias.toLowerCase()] : [it.table.toLowerCase(), written.toLowerCase()], target: cte ? '?' : written.toLowerCase() });
      continue;
    }
    const sub = it.expr as Obj | undefined;
    if (isObj(sub) && isObj(sub.ast)) {
      walkStatement(sub.ast, w, parent, false);
      scope.items.push({ names: alias ? [alias.toLowerCase()] : [], target: '?' });
      continue;
    }
    if (isObj(sub)) {
      // A table function (JSON_TABLE …) or a VALUES list: its columns are not table columns.
      walkExpr(sub, w, parent);
      scope.items.push({ names: alias ? [alias.toLowerCase()] : [], target: '?' });
    }
  }
  return scope;
}

function resolve(scope: Scope | null, name: string): string | undefined {
  const key = name.toLowerCase();
  for (let s = scope; s; s = s.parent) for (const it of s.items) if (it.names.includes(key)) return it.target;
  return undefined;
}

function walkSelect(ast: Obj, w: Walk, outer: Scope | null, mode: Mode): void {
  withClause(ast, w, outer);
  // UNION / INTERSECT / EXCEPT: no arm's output is traced.
  const setOp = isObj(ast._next);
  const m = setOp ? Mode.Expr : mode;
  const into = ast.into as Obj | undefined;
  // SELECT … INTO @var / OUTFILE: values leave the result set, where masking would apply.
  const intoSomething = isObj(into) && into.type === 'into';
  const scope = scopeOf(ast.from, w, outer);
  for (const f of (Array.isArray(ast.from) ? ast.from : []) as Obj[]) {
    walkExpr(f.on, w, scope);
    walkExpr(f.using, w, scope);
  }
  const columns = ast.columns;
  const targets = (Array.isArray(columns) ? columns : []) as Obj[];
  for (const c of targets) {
    const e = (c.expr ?? c) as Obj;
    if (e.type === 'column_ref') columnRef(e, w, scope, m === Mode.Output && !intoSomething ? Mode.Output : Mode.Expr, true);
    else walkExpr(e, w, scope);
  }
  for (const key of ['where', 'groupby', 'having', 'window', 'limit', 'qualify']) walkExpr(ast[key], w, scope);
  walkOrder(ast.orderby, targets, w, scope);
  if (setOp) walkSelect(ast._next as Obj, w, outer, Mode.Expr);
  if (ast.distinct && m === Mode.Output) {
    // DISTINCT compares the values: a masked column in it leaks equality.
    for (const c of targets) {
      const e = (c.expr ?? c) as Obj;
      if (e.type === 'column_ref') columnRef(e, w, scope, Mode.Expr, true);
    }
  }
}

/** ORDER BY n / ORDER BY alias sort by the values of that target: used in an expression. */
function walkOrder(orderby: unknown, targets: Obj[], w: Walk, scope: Scope): void {
  for (const o of (Array.isArray(orderby) ? orderby : []) as Obj[]) {
    const e = o.expr as Obj | undefined;
    if (e?.type === 'number' && typeof e.value === 'number') {
      const t = targets[e.value - 1];
      const te = (t?.expr ?? t) as Obj | undefined;
      if (te?.type === 'column_ref' && te.column === '*') for (const x of targets) walkTargetAsExpr(x, w, scope);
      else if (te) walkTargetAsExpr(t, w, scope);
      continue;
    }
    if (e?.type === 'column_ref' && e.table == null) {
      const name = columnName(e);
      const aliased = targets.find((t) => typeof t.as === 'string' && t.as.toLowerCase() === name?.toLowerCase());
      if (aliased) walkTargetAsExpr(aliased, w, scope);
    }
    walkExpr(e, w, scope);
  }
}

function walkTargetAsExpr(t: Obj, w: Walk, scope: Scope): void {
  const e = (t.expr ?? t) as Obj;
  if (e.type === 'column_ref') columnRef(e, w, scope, Mode.Expr, true);
  else walkExpr(e, w, scope);
}

function columnName(e: Obj): string | null {
  const c = e.column;
  if (typeof c === 'string') return c;
  const v = ((c as Obj | undefined)?.expr as Obj | undefined)?.value;
  return typeof v === 'string' ? v : null;
}

function columnRef(e: Obj, w: Walk, scope: Scope | null, mode: Mode, target: boolean): void {
  const col = columnName(e);
  const table = typeof e.table === 'string' ? e.table : null;
  const db = typeof e.db === 'string' ? e.db : typeof e.schema === 'string' ? e.schema : null;
  if (col === null) {
    w.wholeRows.add('?');
    return;
  }
  if (col === '*') {
    // `*` / `t.*` as an output column of the outermost SELECT over base tables: expanded by the
    // server and traced by origin. Over a derived table or CTE (reported under its alias), or
    // anywhere else: every relation it covers is read whole.
    const targets: string[] = [];
    if (table) targets.push(resolve(scope, db ? `${db}.${table}` : table) ?? '?');
    else for (const it of scope?.items ?? []) targets.push(it.target);
    if (targets.length === 0) targets.push('?');
    if (mode === Mode.Output && target && !targets.includes('?')) return;
    for (const t of targets) w.wholeRows.add(t);
    return;
  }
  const lower = col.toLowerCase();
  if (mode === Mode.Output) {
    // A column of a derived table or CTE comes back under the alias, untraced.
    if (table && resolve(scope, table) === '?') w.expr.add(lower);
    else w.output.add(lower);
  } else w.expr.add(lower);
}

function functionName(fn: Obj | undefined): string | null {
  if (!fn) return null;
  const n = fn.name;
  if (typeof n === 'string') return n.toLowerCase();
  const parts = ((n as Obj | undefined)?.name ?? []) as Obj[];
  if (!Array.isArray(parts) || parts.length === 0) return null;
  return parts
    .map((p) => String(p.value))
    .join('.')
    .toLowerCase();
}

/** Every expression: column references, functions, subqueries. */
function walkExpr(node: unknown, w: Walk, scope: Scope | null): void {
  if (Array.isArray(node)) {
    for (const x of node) walkExpr(x, w, scope);
    return;
  }
  if (!isObj(node)) return;
  const type = node.type;
  if (type === 'column_ref') return columnRef(node, w, scope, Mode.Expr, false);
  if (type === 'select') return walkSelect(node, w, scope, Mode.Expr);
  if (isObj(node.ast)) {
    walkStatement(node.ast, w, scope, false);
    return;
  }
  if (type === 'function' || type === 'aggr_func') {
    const name = functionName(node);
    if (name) w.functions.add(name);
  }
  if (type === 'var' && node.prefix === '@@') {
    // Server variables are values of the server, not of tables.
  }
  for (const k in node) {
    if (k === 'type') continue;
    const v = node[k];
    if (v !== null && typeof v === 'object') walkExpr(v, w, scope);
  }
}

/** `WHERE true`, `1=1`, `'a'='a'`, `id=id`, `NOT false`, `x OR true`, `trivial AND trivial`. */
function isTrivialMysql(e: unknown): boolean {
  if (!isObj(e)) return false;
  if (e.parentheses && e.type !== 'binary_expr' && e.type !== 'unary_expr') return isTrivialMysql({ ...e, parentheses: false });
  switch (e.type) {
    case 'bool':
      return e.value === true;
    case 'number':
      return Number(e.value) !== 0;
    case 'unary_expr':
      return String(e.operator).toUpperCase() === 'NOT' && isFalse(e.expr);
    case 'binary_expr': {
      const op = String(e.operator).toUpperCase();
      if (op === 'OR' || op === '||') return isTrivialMysql(e.left) || isTrivialMysql(e.right);
      if (op === 'AND' || op === '&&') return isTrivialMysql(e.left) && isTrivialMysql(e.right);
      if (['=', '<=>', '>=', '<=', 'IS', 'LIKE'].includes(op)) {
        if (op === 'IS')
          return (
            isObj(e.right) && (e.right.type === 'null' ? isObj(e.left) && e.left.type === 'null' : e.right.type === 'bool' && e.right.value === true && isTrivialMysql(e.left))
          );
        return sameConstant(e.left, e.right) || (op !== 'LIKE' && sameColumn(e.left, e.right) && op !== '=' ? true : op === '=' && sameColumn(e.left, e.right));
      }
      return false;
    }
  }
  return false;
}

function isFalse(e: unknown): boolean {
  if (!isObj(e)) return false;
  return (e.type === 'bool' && e.value === false) || (e.type === 'number' && Number(e.value) === 0);
}

function sameConstant(a: unknown, b: unknown): boolean {
  if (!isObj(a) || !isObj(b)) return false;
  const lit = (x: Obj) => ['number', 'single_quote_string', 'double_quote_string', 'string', 'bool'].includes(String(x.type));
  return lit(a) && lit(b) && String(a.value) === String(b.value);
}

function sameColumn(a: unknown, b: unknown): boolean {
  return (
    isObj(a) &&
    isObj(b) &&
    a.type === 'column_ref' &&
    b.type === 'column_ref' &&
    columnName(a) === columnName(b) &&
    (a.table ?? null) === (b.table ?? null) &&
    columnName(a) !== '*'
  );
}

// ---------------------------------------------------------------------------------------
// Units, cached

const CACHE_MAX_TEXT = 16 * 1024;
const CACHE_MAX_ENTRIES = 10_000;
const caches = new Map<string, Map<string, Result<Unit[]>>>();

export interface MysqlUnitsOptions extends MysqlClassifyOptions {
  /** The session's default database; becomes `match.database`. */
  database?: string;
}

/**
 * One frozen Unit per statement of `sql` (type `statement`), cached by text (and database
 * and backslash mode). `context` also carries `localInfile` and `use` for the connector.
 */
export function mysqlUnits(sql: string, o: MysqlUnitsOptions = {}): Result<Unit[]> {
  const key = `${o.noBackslashEscapes ? 'N' : 'B'}${o.database ?? '\0'}`;
  let cache = caches.get(key);
  const hit = cache?.get(sql);
  if (hit) return hit;
  const result = freeze(classifyShaped(sql, o), o.database);
  if (sql.length > CACHE_MAX_TEXT) return result;
  if (!cache) {
    if (caches.size >= 64) return result;
    cache = new Map();
    caches.set(key, cache);
  }
  if (cache.size >= CACHE_MAX_ENTRIES) cache.delete(cache.keys().next().value as string);
  cache.set(sql, result);
  return result;
}

function freeze(c: Result<MysqlStatement[]>, database: string | undefined): Result<Unit[]> {
  return c.ok ? Object.freeze({ ok: true as const, value: Object.freeze(c.value.map((s) => toUnit(s, database))) as Unit[] }) : Object.freeze(c);
}

/**
 * Statements that differ only in their literals (`WHERE id = 5012`, `VALUES (…)`) are
 * classified once: the grammar is the costly part (a few hundred µs), the lexer a few.
 *
 * Two shapes per text. The broad one replaces every number and single-quoted string (numbers
 * after `BY` or a comma stay: ORDER BY 2 names a column); it is reused only for statements
 * literals cannot change — no UPDATE/DELETE (`WHERE 1 = 1` is trivial, `WHERE 1 = 2` is not),
 * no PREPARE (its string is SQL), nothing opaque. The narrow one replaces only literals
 * compared with a column (`id = 5`, `k BETWEEN 1 AND 9`), which no trivial WHERE is made of;
 * it serves UPDATE and DELETE.
 */
const broadShapes = new Map<string, readonly Omit<MysqlStatement, 'text'>[]>();
const narrowShapes = new Map<string, readonly Omit<MysqlStatement, 'text'>[]>();

const NOT_IDENTIFIERS = new Set([
  'WHERE',
  'AND',
  'OR',
  'NOT',
  'XOR',
  'SELECT',
  'ON',
  'HAVING',
  'WHEN',
  'THEN',
  'ELSE',
  'CASE',
  'BETWEEN',
  'IS',
  'NULL',
  'TRUE',
  'FALSE',
  'LIKE',
  'IN',
]);

function isIdentifier(t: Token | undefined): boolean {
  return !!t && (t.t === 'q' || (t.t === 'w' && !NOT_IDENTIFIERS.has(t.v)));
}

/** A literal compared with a column: `col = 5`, `col <> 'x'`, `col BETWEEN 1 AND 9`. */
function comparedWithColumn(tokens: Token[], i: number): boolean {
  let j = i - 1;
  while (j >= 0 && tokens[j].t === 'p' && (tokens[j].v === '=' || tokens[j].v === '<' || tokens[j].v === '>' || tokens[j].v === '!')) j--;
  if (j < i - 1) return isIdentifier(tokens[j]);
  if (tokens[i - 1]?.v === 'BETWEEN' && tokens[i - 1].t === 'w') return isIdentifier(tokens[i - 2]);
  if (tokens[i - 1]?.v === 'AND' && tokens[i - 3]?.v === 'BETWEEN') return isIdentifier(tokens[i - 4]);
  return false;
}

function remember(map: Map<string, readonly Omit<MysqlStatement, 'text'>[]>, key: string, c: MysqlStatement[]): void {
  if (map.size >= CACHE_MAX_ENTRIES) map.delete(map.keys().next().value as string);
  map.set(
    key,
    c.map(({ text: _text, ...rest }) => rest),
  );
}

function classifyShaped(sql: string, o: MysqlClassifyOptions): Result<MysqlStatement[]> {
  let lexed: Lexed;
  try {
    lexed = lexMysql(sql, o);
  } catch (e) {
    return err('policy.parse', `SQL parse error: ${(e as Error).message}`);
  }
  const tokens = lexed.tokens;
  let broad = o.noBackslashEscapes ? 'N' : 'B';
  let narrow = broad;
  let literals = 0;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    const text = `\u0001${t.t}${t.raw ?? t.v}`;
    const literal = t.t === 'n' || (t.t === 's' && !t.dq);
    if (literal && !(t.t === 'n' && (tokens[i - 1]?.v === 'BY' || tokens[i - 1]?.v === ','))) {
      broad += '\u0001?';
      literals++;
    } else broad += text;
    narrow += literal && comparedWithColumn(tokens, i) ? '\u0001?' : text;
  }
  if (literals === 0 || broad.length > CACHE_MAX_TEXT) return classifyLexed(sql, lexed, o);
  const template = broadShapes.get(broad) ?? narrowShapes.get(narrow);
  if (template) {
    const pieces = split(tokens);
    if (pieces.length === template.length) return ok(template.map((s, i) => ({ ...s, text: sql.slice(pieces[i].start, pieces[i].end).trim() })));
  }
  const c = classifyLexed(sql, lexed, o);
  if (c.ok && c.value.every((s) => !s.opaque && !s.kinds.includes('prepare'))) {
    if (c.value.every((s) => s.where === 'n/a')) remember(broadShapes, broad, c.value);
    else remember(narrowShapes, narrow, c.value);
  }
  return c;
}

function toUnit(s: MysqlStatement, database: string | undefined): Unit {
  const kinds = Object.freeze(s.kinds) as string[];
  const tables = Object.freeze(s.tables) as string[];
  const match: Unit['match'] = { statement: kinds, tables, where: s.where };
  if (database !== undefined) match.database = database;
  const context = Object.freeze({
    kind: s.kind,
    kinds,
    tables,
    where: s.where,
    text: s.text,
    opaque: s.opaque,
    opaqueReason: s.opaqueReason,
    columns: s.columns,
    localInfile: s.localInfile,
    ...(s.use !== undefined ? { use: s.use } : {}),
  });
  return Object.freeze({ type: 'statement' as const, text: s.text, match: Object.freeze(match), context });
}
