/**
 * SQL classification with the real PostgreSQL parser (@libpg-query/parser: PostgreSQL 17's
 * SQL and PL/pgSQL grammars compiled to WASM).
 *
 * We walk the parse tree rather than pattern-match text, so comments, dollar quoting,
 * multi-statement strings and nested data-modifying statements cannot hide a DELETE.
 * Procedural code is walked too: DO blocks and function / procedure bodies (PL/pgSQL and
 * SQL) are parsed and every statement in them is merged into the outer statement's kinds
 * and tables. What cannot be judged — dynamic SQL (`EXECUTE` of a built string), other
 * languages, triggers, bodies that do not parse — marks the statement `opaque`.
 *
 * The same walk records how the statement uses columns (`SqlColumnUse`), for the
 * connector's restricted SQL for masked callers (restricted-sql.ts).
 */
import { loadModule, parsePlPgSQLSync, parseSync } from '@libpg-query/parser';
import type { Result } from '@gatehouse/core';
import { err, ok } from '@gatehouse/core';
import type { SqlColumnUse } from './restricted-sql.js';
import { kindOfNode, NESTED_IGNORED_KINDS } from './sql-kinds.js';
import { dollarTag, splitAssignment } from './sql-procedural.js';
import { isTrivialPredicate } from './sql-trivial.js';

export type SqlWhere = 'present' | 'absent' | 'trivial' | 'n/a';

export interface SqlStatement {
  /** Kind of the top-level statement (`select`, `delete`, `create`, … or `other`). */
  kind: string;
  /** `kind` plus every nested kind that can change data (CTE DML, EXPLAIN, PREPARE, COPY (…), MERGE actions, procedural bodies). */
  kinds: string[];
  /** Every relation named anywhere in the tree (procedural bodies included), schema-qualified as written. */
  tables: string[];
  /**
   * For UPDATE/DELETE and MERGE update/delete actions (also nested): `absent` if any lacks a
   * WHERE clause, else `trivial` if any has one that is true for every row (`WHERE true`,
   * `1=1`, `id=id`…), else `present`. Other statements: `n/a`.
   */
  where: SqlWhere;
  /** This statement's own slice of the (possibly multi-statement) input, trimmed. */
  text: string;
  /** Procedural code that cannot be judged statement by statement (dynamic SQL, another language, a trigger). */
  opaque: boolean;
  /** Why it is opaque ('' when it is not), for decision reasons and messages. */
  opaqueReason: string;
  /** How the statement uses columns, for restricted SQL. */
  columns: SqlColumnUse;
}

let loading: Promise<void> | null = null;
let ready = false;

/** True once `initSqlParser()` has completed. */
export function sqlParserReady(): boolean {
  return ready;
}

/** Load the parser's WASM module once. Idempotent; call at gateway start. */
export function initSqlParser(): Promise<void> {
  loading ??= loadModule().then(() => {
    ready = true;
  });
  return loading;
}

const BLANK = /^\s*$/;

type Obj = Record<string, unknown>;

interface ParsedStmt {
  stmt?: Obj;
  stmt_location?: number;
  stmt_len?: number;
}

/**
 * Classify every statement of `sql`. An empty query (only whitespace / comments / `;`)
 * gives []. A syntax error gives `policy.parse` with the parser's message.
 */
export function classifySql(sql: string): Result<SqlStatement[]> {
  if (!ready) return err('policy.parse', 'SQL parser not initialised (initSqlParser() was not awaited)');
  if (BLANK.test(sql)) return ok([]);
  let tree: { stmts?: ParsedStmt[] };
  try {
    tree = parseSync(sql);
  } catch (e) {
    return err('policy.parse', `SQL parse error: ${(e as Error).message}`);
  }
  const stmts = tree.stmts ?? [];
  const slicer = textSlicer(sql);
  const out: SqlStatement[] = [];
  for (const s of stmts) {
    if (!s.stmt) continue;
    const start = s.stmt_location ?? 0;
    const text = slicer(start, s.stmt_len ? start + s.stmt_len : undefined);
    out.push(classifyStatement(s.stmt, text));
  }
  return ok(out);
}

/**
 * Parser locations are UTF-8 byte offsets; JS strings index UTF-16 units. Pure-ASCII
 * input (the common case) is sliced directly; anything else through a Buffer.
 */
function textSlicer(sql: string): (start: number, end?: number) => string {
  const bytes = Buffer.byteLength(sql, 'utf8');
  if (bytes === sql.length) return (start, end) => sql.slice(start, end).trim();
  const buf = Buffer.from(sql, 'utf8');
  return (start, end) => buf.subarray(start, end).toString('utf8').trim();
}

/** Mutable scratch for one statement's walk (procedural bodies included). */
interface Walk {
  kinds: Set<string>;
  tables: Set<string>;
  /** UPDATE/DELETE (and MERGE update/delete actions) seen; of those, lacking WHERE; with a trivial one. */
  writes: number;
  unfiltered: number;
  trivial: number;
  /** Why the statement is opaque, or null. The first reason wins. */
  opaque: string | null;
  output: Set<string>;
  expr: Set<string>;
  wholeRows: Set<string>;
  functions: Set<string>;
  /** The outermost plain SELECT, whose bare target columns are `output`. */
  outputSelect: Obj | null;
  /** The statement being walked (its node body) and its text: a plpgsql CREATE FUNCTION is re-parsed from it. */
  root: Obj | null;
  rootText: string;
  /** Procedural nesting depth (a DO block creating a function whose body runs a DO block…). */
  depth: number;
}

/** What a walk position can see: CTE names (not tables) and FROM items (for whole-row references). */
interface Ctx {
  ctes: ReadonlySet<string>;
  scope: Scope | null;
}
interface Scope {
  items: RangeItem[];
  parent: Scope | null;
}
/** A FROM item: the names it can be referred to by, and the relation it stands for ('?' for subqueries, CTEs, functions). */
interface RangeItem {
  names: string[];
  target: string;
}

const EMPTY_SCOPE: ReadonlySet<string> = new Set();
const ROOT_CTX: Ctx = { ctes: EMPTY_SCOPE, scope: null };
/** Deeper procedural nesting than this is opaque (a bound on work, not a real limit). */
const MAX_PROCEDURAL_DEPTH = 8;

/**
 * How a SELECT's target list is read. Output: the outermost plain SELECT (bare columns are
 * traced by origin). Subquery: a FROM (…) subquery, whose `*` passes columns through to the
 * outer query, which names (and so is checked for) whatever it uses of them. Exists: an
 * EXISTS (…) subquery, whose targets are never read. Expr: anything else.
 */
const enum Mode {
  Output,
  Subquery,
  Exists,
  Expr,
}

function classifyStatement(stmt: Obj, text: string): SqlStatement {
  const [type] = Object.keys(stmt);
  const body = stmt[type] as Obj;
  const kind = kindOfNode(type, body);
  const w: Walk = {
    kinds: new Set([kind]),
    tables: new Set(),
    writes: 0,
    unfiltered: 0,
    trivial: 0,
    opaque: null,
    output: new Set(),
    expr: new Set(),
    wholeRows: new Set(),
    functions: new Set(),
    outputSelect: outputSelectOf(type, body),
    root: body,
    rootText: text,
    depth: 0,
  };
  walk(stmt, w, ROOT_CTX);
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
  };
}

/** The outermost plain SELECT (also under PREPARE … AS, DECLARE … CURSOR FOR, EXPLAIN), or null. */
function outputSelectOf(type: string, body: Obj): Obj | null {
  for (let i = 0; i < 4; i++) {
    if (type === 'SelectStmt') return !body.intoClause && (!body.op || body.op === 'SETOP_NONE') ? body : null;
    if (type !== 'PrepareStmt' && type !== 'DeclareCursorStmt' && type !== 'ExplainStmt') return null;
    const q = body.query as Obj | undefined;
    if (!q) return null;
    [type] = Object.keys(q);
    body = q[type] as Obj;
  }
  return null;
}

/**
 * Generic walk of the JSON parse tree. Node types are the PascalCase keys (`{DeleteStmt: …}`);
 * a few also appear bare in typed fields (`DeleteStmt.relation` is a bare RangeVar,
 * `CallStmt.funccall` a bare FuncCall) and are recognised by their shape.
 */
function walk(node: unknown, w: Walk, ctx: Ctx): void {
  if (Array.isArray(node)) {
    for (const n of node) walk(n, w, ctx);
    return;
  }
  if (node === null || typeof node !== 'object') return;
  const obj = node as Obj;
  if (typeof obj.relname === 'string' && 'relpersistence' in obj) addRangeVar(obj, w, ctx.ctes);
  else if (Array.isArray(obj.funcname) && typeof obj.funcformat === 'string') addFunction(obj.funcname, w);
  for (const key in obj) {
    const child = obj[key];
    if (child === null || typeof child !== 'object') continue;
    const c = key.charCodeAt(0);
    if (c >= 65 && c <= 90) visit(key, child as Obj, w, ctx);
    else walk(child, w, ctx);
  }
}

/** One node `{type: body}`. */
function visit(type: string, body: Obj, w: Walk, ctx: Ctx): void {
  if (type.endsWith('Stmt')) {
    const kind = kindOfNode(type, body);
    if (!NESTED_IGNORED_KINDS.has(kind)) w.kinds.add(kind);
  }
  switch (type) {
    case 'ColumnRef':
      columnRef(body, w, ctx, Mode.Expr);
      return;
    case 'SelectStmt':
      walkSelect(body, w, ctx, body === w.outputSelect ? Mode.Output : Mode.Expr);
      return;
    case 'SubLink': {
      const sel = (body.subselect as Obj | undefined)?.SelectStmt as Obj | undefined;
      if (body.subLinkType === 'EXISTS_SUBLINK' && sel) {
        walkSelect(sel, w, ctx, Mode.Exists);
        return;
      }
      break;
    }
    case 'RangeSubselect': {
      const sel = (body.subquery as Obj | undefined)?.SelectStmt as Obj | undefined;
      if (sel) {
        walkSelect(sel, w, ctx, Mode.Subquery);
        return;
      }
      break;
    }
    case 'UpdateStmt':
    case 'DeleteStmt':
    case 'InsertStmt':
    case 'MergeStmt':
      walkWrite(type, body, w, ctx);
      return;
    case 'DropStmt':
      addDropped(body, w);
      break;
    case 'DoStmt':
      doBlock(body, w);
      break;
    case 'CreateFunctionStmt':
      functionBody(body, w);
      break;
    case 'CreateTrigStmt':
    case 'CreateEventTrigStmt':
      markOpaque(w, 'a trigger runs a function whose actions are not visible here');
      break;
  }
  walk(body, w, ctx);
}

function markOpaque(w: Walk, why: string): void {
  w.opaque ??= why;
}

// ---------------------------------------------------------------------------------------
// Relations, scopes, column references

/** Relation-like objects a DROP names as lists of strings rather than RangeVars. */
const DROPPED_RELATIONS = new Set(['OBJECT_TABLE', 'OBJECT_VIEW', 'OBJECT_MATVIEW', 'OBJECT_FOREIGN_TABLE', 'OBJECT_SEQUENCE', 'OBJECT_INDEX']);

function addDropped(body: Obj, w: Walk): void {
  if (!DROPPED_RELATIONS.has(body.removeType as string)) return;
  for (const o of (body.objects ?? []) as { List?: { items?: { String?: { sval?: string } }[] } }[]) {
    const parts = (o.List?.items ?? []).map((i) => i.String?.sval ?? '');
    if (parts.length > 0 && parts.every((p) => p !== '')) w.tables.add(parts.join('.'));
  }
}

function qualifiedName(rv: Obj): string {
  const rel = rv.relname as string;
  const schema = rv.schemaname as string | undefined;
  const catalog = rv.catalogname as string | undefined;
  return catalog ? `${catalog}.${schema}.${rel}` : schema ? `${schema}.${rel}` : rel;
}

function addRangeVar(rv: Obj, w: Walk, ctes: ReadonlySet<string>): void {
  const rel = rv.relname as string | undefined;
  if (!rel) return;
  if (!rv.schemaname && !rv.catalogname && ctes.has(rel)) return; // a CTE reference, not a relation
  w.tables.add(qualifiedName(rv));
}

function addFunction(funcname: unknown[], w: Walk): void {
  let name = '';
  for (const part of funcname as { String?: { sval?: string } }[]) {
    const s = part.String?.sval;
    if (typeof s !== 'string') return;
    name = name ? `${name}.${s}` : s;
  }
  if (!name) return;
  name = name.toLowerCase();
  w.functions.add(name);
  if (RUNS_SQL_TEXT.test(name)) markOpaque(w, `${name} runs SQL given as text`);
}

/**
 * Functions that run SQL given as text and may change data (over a new connection, or in a
 * background worker): `SELECT dblink_exec('…', 'DROP TABLE t')` is dynamic SQL too.
 * (Read-only ones such as query_to_xml are listed in restricted-sql.ts for masking.)
 */
const RUNS_SQL_TEXT = /(^|\.)(dblink|dblink_exec|dblink_send_query|pg_background_launch)$/;

function aliasOf(body: Obj): string | undefined {
  return (body.alias as { aliasname?: string } | undefined)?.aliasname;
}

/** FROM-clause items → the names they are visible by (one level; subqueries are walked later). */
function collectRange(node: unknown, items: RangeItem[], ctes: ReadonlySet<string>): void {
  if (node === null || typeof node !== 'object') return;
  const n = node as Obj;
  const rv = (n.RangeVar ?? (typeof n.relname === 'string' ? n : undefined)) as Obj | undefined;
  if (rv) {
    const written = qualifiedName(rv);
    const cte = !rv.schemaname && !rv.catalogname && ctes.has(rv.relname as string);
    const alias = aliasOf(rv);
    items.push({ names: alias ? [alias] : written === rv.relname ? [written] : [rv.relname as string, written], target: cte ? '?' : written.toLowerCase() });
    return;
  }
  if (n.JoinExpr) {
    const j = n.JoinExpr as Obj;
    collectRange(j.larg, items, ctes);
    collectRange(j.rarg, items, ctes);
    const alias = aliasOf(j);
    if (alias) items.push({ names: [alias], target: '?' });
    return;
  }
  if (n.RangeTableSample) {
    collectRange((n.RangeTableSample as Obj).relation, items, ctes);
    return;
  }
  if (n.RangeFunction) {
    const f = n.RangeFunction as Obj;
    const alias = aliasOf(f);
    if (alias) items.push({ names: [alias], target: '?' });
    else {
      for (const l of (f.functions ?? []) as { List?: { items?: { FuncCall?: { funcname?: { String?: { sval?: string } }[] } }[] } }[]) {
        const fn = l.List?.items?.[0]?.FuncCall?.funcname;
        const last = fn?.[fn.length - 1]?.String?.sval;
        if (last) items.push({ names: [last], target: '?' });
      }
    }
    return;
  }
  // RangeSubselect, RangeTableFunc (XMLTABLE), JsonTable, …: visible by their alias.
  for (const k in n) {
    const alias = aliasOf(n[k] as Obj);
    if (alias) items.push({ names: [alias], target: '?' });
  }
}

/** The relation a name (`c`, `cards`, `public.cards`) refers to in scope, or undefined. */
function resolve(scope: Scope | null, name: string): string | undefined {
  for (let s = scope; s; s = s.parent) {
    for (const it of s.items) if (it.names.includes(name)) return it.target;
  }
  return undefined;
}

/**
 * A column reference, read per `mode` (see Mode): only Output records bare names as
 * `output`; only Expr turns a star into whole-row references.
 */
function columnRef(body: Obj, w: Walk, ctx: Ctx, mode: Mode): void {
  const fields = (body.fields ?? []) as Obj[];
  const n = fields.length;
  if (n === 0) return;
  const star = 'A_Star' in fields[n - 1];
  const names: string[] = [];
  for (let i = 0; i < (star ? n - 1 : n); i++) {
    const s = (fields[i].String as { sval?: string } | undefined)?.sval;
    if (typeof s !== 'string') {
      w.wholeRows.add('?'); // not a name we can read: fail towards "unknown"
      return;
    }
    names.push(s);
  }
  if (star) {
    // SELECT * / t.* at the top (expanded by PostgreSQL, traced by origin), in a FROM (…)
    // subquery (passed through to the outer query's own checks) or in EXISTS (never read).
    if (mode !== Mode.Expr) return;
    if (names.length === 0) {
      const items = ctx.scope?.items;
      if (!items || items.length === 0) w.wholeRows.add('?');
      else for (const it of items) w.wholeRows.add(it.target);
    } else w.wholeRows.add(resolve(ctx.scope, names.join('.')) ?? '?');
    return;
  }
  const col = names[names.length - 1].toLowerCase();
  const into = mode === Mode.Output ? w.output : w.expr;
  if (names.length === 1) {
    // `SELECT c FROM cards c`: PostgreSQL prefers a column named c, else the whole row.
    const target = resolve(ctx.scope, names[0]);
    if (target !== undefined) w.wholeRows.add(target);
    into.add(col);
    return;
  }
  if (resolve(ctx.scope, names.slice(0, -1).join('.')) !== undefined) {
    into.add(col);
    return;
  }
  // `a.b` where `a` is no FROM item: a field of a composite column (or of a procedural
  // variable). Not traceable: both names count as used in an expression.
  w.expr.add(col);
  w.expr.add(names[names.length - 2].toLowerCase());
}

// ---------------------------------------------------------------------------------------
// Statements with scopes

/**
 * A statement with WITH: CTE bodies see earlier siblings (all of them if RECURSIVE), so a
 * reference to a CTE is not reported as a table — but `WITH users AS (SELECT * FROM users)`
 * still reports the real `users` read inside the (non-recursive) CTE body.
 */
function withCtes(body: Obj, w: Walk, ctx: Ctx): Ctx {
  const withClause = body.withClause as { ctes?: { CommonTableExpr?: { ctename?: string; ctequery?: unknown } }[]; recursive?: boolean } | undefined;
  if (!withClause) return ctx;
  const ctes = (withClause.ctes ?? []).map((c) => c.CommonTableExpr ?? {});
  const all = new Set(ctx.ctes);
  for (const c of ctes) if (c.ctename) all.add(c.ctename);
  const visible = new Set(ctx.ctes);
  for (const c of ctes) {
    if (withClause.recursive) walk(c.ctequery, w, { ctes: all, scope: ctx.scope });
    else {
      walk(c.ctequery, w, { ctes: visible, scope: ctx.scope });
      if (c.ctename) visible.add(c.ctename);
    }
  }
  return { ctes: all, scope: ctx.scope };
}

function walkSelect(body: Obj, w: Walk, outer: Ctx, mode: Mode): void {
  const ctx = withCtes(body, w, outer);
  if (body.op && body.op !== 'SETOP_NONE') {
    // UNION / INTERSECT / EXCEPT: the arms' output is not traced by origin.
    walkSelect(body.larg as Obj, w, ctx, Mode.Expr);
    walkSelect(body.rarg as Obj, w, ctx, Mode.Expr);
    for (const key in body) if (key !== 'withClause' && key !== 'larg' && key !== 'rarg') walk(body[key], w, ctx);
    return;
  }
  const items: RangeItem[] = [];
  for (const f of (body.fromClause ?? []) as unknown[]) collectRange(f, items, ctx.ctes);
  const inner: Ctx = { ctes: ctx.ctes, scope: { items, parent: ctx.scope } };
  for (const key in body) {
    if (key === 'withClause') continue;
    if (key !== 'targetList' || mode === Mode.Expr) {
      walk(body[key], w, inner);
      continue;
    }
    for (const t of body.targetList as Obj[]) {
      const val = (t.ResTarget as Obj | undefined)?.val as Obj | undefined;
      if (val?.ColumnRef) columnRef(val.ColumnRef as Obj, w, inner, mode);
      else walk(t, w, inner);
    }
  }
  if (mode === Mode.Output || mode === Mode.Subquery) demoteSortedTargets(body, w, inner);
}

/**
 * `SELECT card_number FROM cards ORDER BY 1` (or `… AS x ORDER BY x`, or GROUP BY / DISTINCT
 * ON those) compares the masked values: the targets referred to by position or output name
 * are used in an expression, not just output.
 */
function demoteSortedTargets(body: Obj, w: Walk, ctx: Ctx): void {
  const refs: unknown[] = [];
  for (const s of (body.sortClause ?? []) as { SortBy?: { node?: unknown } }[]) refs.push(s.SortBy?.node);
  for (const g of (body.groupClause ?? []) as unknown[]) refs.push(g);
  for (const d of (body.distinctClause ?? []) as unknown[]) refs.push(d);
  if (refs.length === 0) return;
  const targets = (body.targetList ?? []) as { ResTarget?: { name?: string; val?: Obj } }[];
  const demote = (t: { ResTarget?: { val?: Obj } } | undefined): void => {
    const ref = t?.ResTarget?.val?.ColumnRef as Obj | undefined;
    if (ref) columnRef(ref, w, ctx, Mode.Expr);
  };
  for (const r of refs) {
    const node = r as Obj | undefined;
    const pos = (node?.A_Const as { ival?: { ival?: number } } | undefined)?.ival;
    if (pos !== undefined) {
      const k = pos.ival ?? 0;
      // A star before position k shifts the positions: every target may be the one.
      const starBefore = targets.slice(0, k).some((t) => isStar(t.ResTarget?.val));
      if (starBefore) for (const t of targets) demoteAll(t, w, ctx);
      else demote(targets[k - 1]);
      continue;
    }
    const fields = (node?.ColumnRef as { fields?: { String?: { sval?: string } }[] } | undefined)?.fields;
    const name = fields?.length === 1 ? fields[0].String?.sval : undefined;
    if (name !== undefined) for (const t of targets) if (t.ResTarget?.name === name) demote(t);
  }
}

function isStar(val: Obj | undefined): boolean {
  const fields = (val?.ColumnRef as { fields?: Obj[] } | undefined)?.fields;
  return !!fields && fields.length > 0 && 'A_Star' in fields[fields.length - 1];
}

function demoteAll(t: { ResTarget?: { val?: Obj } }, w: Walk, ctx: Ctx): void {
  const ref = t.ResTarget?.val?.ColumnRef as Obj | undefined;
  if (ref) columnRef(ref, w, ctx, Mode.Expr);
}

/** UPDATE / DELETE / INSERT / MERGE: their target (and USING / FROM items) are in scope. */
function walkWrite(type: string, body: Obj, w: Walk, outer: Ctx): void {
  const ctx = withCtes(body, w, outer);
  const items: RangeItem[] = [];
  if (body.relation) collectRange(body.relation, items, ctx.ctes);
  for (const f of (body.fromClause ?? body.usingClause ?? []) as unknown[]) collectRange(f, items, ctx.ctes);
  if (body.sourceRelation) collectRange(body.sourceRelation, items, ctx.ctes);
  if (type === 'InsertStmt' && body.onConflictClause && items.length > 0) items.push({ names: ['excluded'], target: items[0].target });
  const inner: Ctx = { ctes: ctx.ctes, scope: { items, parent: ctx.scope } };

  if (type === 'UpdateStmt' || type === 'DeleteStmt') {
    w.writes++;
    if (!body.whereClause) w.unfiltered++;
    else if (isTrivialPredicate(body.whereClause)) w.trivial++;
  } else if (type === 'MergeStmt') {
    mergeActions(body, w);
  } else if ((body.onConflictClause as Obj | undefined)?.action === 'ONCONFLICT_UPDATE') {
    w.kinds.add('update'); // INSERT … ON CONFLICT DO UPDATE updates rows
  }
  for (const key in body) if (key !== 'withClause') walk(body[key], w, inner);
}

const MERGE_KINDS: Record<string, string> = { CMD_UPDATE: 'update', CMD_DELETE: 'delete', CMD_INSERT: 'insert' };

/**
 * MERGE carries the kinds of its WHEN actions. Each UPDATE/DELETE action is a write whose
 * WHERE is the join condition AND the action's own condition; a `WHEN NOT MATCHED BY SOURCE`
 * action touches every target row the source does not match, so only its own condition
 * filters it.
 */
function mergeActions(body: Obj, w: Walk): void {
  const joinTrivial = !body.joinCondition || isTrivialPredicate(body.joinCondition);
  for (const c of (body.mergeWhenClauses ?? []) as { MergeWhenClause?: Obj }[]) {
    const m = c.MergeWhenClause;
    if (!m) continue;
    const kind = MERGE_KINDS[m.commandType as string];
    if (kind) w.kinds.add(kind);
    if (kind !== 'update' && kind !== 'delete') continue;
    w.writes++;
    const ownTrivial = !m.condition || isTrivialPredicate(m.condition);
    const bySource = m.matchKind === 'MERGE_WHEN_NOT_MATCHED_BY_SOURCE';
    if (ownTrivial && (bySource || joinTrivial)) w.trivial++;
  }
}

// ---------------------------------------------------------------------------------------
// Procedural code

/** DO [LANGUAGE l] 'body': PL/pgSQL is parsed (as the body of a function); anything else is opaque. */
function doBlock(body: Obj, w: Walk): void {
  let language = 'plpgsql';
  let src: string | null = null;
  for (const a of (body.args ?? []) as { DefElem?: { defname?: string; arg?: { String?: { sval?: string } } } }[]) {
    const d = a.DefElem;
    if (d?.defname === 'language') language = d.arg?.String?.sval ?? '';
    else if (d?.defname === 'as') src = d.arg?.String?.sval ?? null;
  }
  if (language.toLowerCase() !== 'plpgsql') return markOpaque(w, `language ${language || '(none)'} cannot be analysed`);
  if (src === null) return markOpaque(w, 'a DO block without a body');
  const tag = dollarTag(src);
  plpgsql(`CREATE FUNCTION gatehouse_do() RETURNS void LANGUAGE plpgsql AS ${tag}${src}${tag}`, w);
}

/** CREATE FUNCTION / PROCEDURE: the body is parsed by its language; other languages are opaque. */
function functionBody(body: Obj, w: Walk): void {
  if (body.sql_body) return; // BEGIN ATOMIC … END / RETURN expr: already part of the tree
  let language = '';
  let as: string[] | null = null;
  for (const o of (body.options ?? []) as { DefElem?: { defname?: string; arg?: Obj } }[]) {
    const d = o.DefElem;
    if (d?.defname === 'language') language = ((d.arg?.String as { sval?: string } | undefined)?.sval ?? '').toLowerCase();
    else if (d?.defname === 'as') {
      const arg = d.arg as { String?: { sval?: string }; List?: { items?: { String?: { sval?: string } }[] } } | undefined;
      as = arg?.List ? (arg.List.items ?? []).map((i) => i.String?.sval ?? '') : arg?.String ? [arg.String.sval ?? ''] : null;
    }
  }
  if (as === null) return markOpaque(w, 'a function without a body');
  if (language === 'sql') {
    if (as.length !== 1) return markOpaque(w, 'an SQL function body that cannot be read');
    nestedSql(as[0], w);
  } else if (language === 'plpgsql') {
    // The PL/pgSQL parser wants the whole CREATE statement (return type, parameters).
    if (w.root !== body) return markOpaque(w, 'a PL/pgSQL body that cannot be read');
    plpgsql(w.rootText, w);
  } else markOpaque(w, `language ${language || '(none)'} cannot be analysed`);
}

interface PlExpr {
  query?: string;
  parseMode?: number;
}

/** Parse a CREATE FUNCTION … LANGUAGE plpgsql statement and walk every SQL statement and expression in it. */
function plpgsql(createText: string, w: Walk): void {
  if (w.depth >= MAX_PROCEDURAL_DEPTH) return markOpaque(w, 'procedural code nested too deeply');
  let tree: { plpgsql_funcs?: unknown[] };
  try {
    tree = parsePlPgSQLSync(createText) as { plpgsql_funcs?: unknown[] };
  } catch {
    return markOpaque(w, 'a PL/pgSQL body that does not parse');
  }
  if (!Array.isArray(tree.plpgsql_funcs) || tree.plpgsql_funcs.length !== 1) return markOpaque(w, 'a PL/pgSQL body that cannot be read');
  w.depth++;
  walkPl(tree.plpgsql_funcs, w);
  w.depth--;
}

/** Dynamic SQL: EXECUTE, FOR … IN EXECUTE, OPEN … FOR EXECUTE, RETURN QUERY EXECUTE. */
const DYNAMIC = 'dynamic SQL (EXECUTE of a built string)';

function walkPl(node: unknown, w: Walk): void {
  if (Array.isArray(node)) {
    for (const n of node) walkPl(n, w);
    return;
  }
  if (node === null || typeof node !== 'object') return;
  const obj = node as Obj;
  for (const key in obj) {
    const child = obj[key];
    if (child === null || typeof child !== 'object') continue;
    switch (key) {
      case 'PLpgSQL_expr':
        plExpr(child, w);
        continue;
      case 'PLpgSQL_stmt_dynexecute':
      case 'PLpgSQL_stmt_dynfors':
      case 'dynquery':
        markOpaque(w, DYNAMIC);
        break;
      case 'PLpgSQL_stmt_commit':
        w.kinds.add('commit');
        break;
      case 'PLpgSQL_stmt_rollback':
        w.kinds.add('rollback');
        break;
    }
    walkPl(child, w);
  }
}

/** PL/pgSQL parse modes (PostgreSQL's RawParseMode). */
const RAW_PARSE_DEFAULT = 0;
const RAW_PARSE_PLPGSQL_EXPR = 2;
const RAW_PARSE_PLPGSQL_ASSIGN1 = 3;
const RAW_PARSE_PLPGSQL_ASSIGN3 = 5;

function plExpr(e: PlExpr, w: Walk): void {
  const q = e.query;
  const mode = e.parseMode ?? RAW_PARSE_DEFAULT;
  if (typeof q !== 'string') return markOpaque(w, 'a PL/pgSQL expression that cannot be read');
  if (mode === RAW_PARSE_DEFAULT) nestedSql(q, w);
  else if (mode === RAW_PARSE_PLPGSQL_EXPR) nestedSql(`SELECT ${q}`, w);
  else if (mode >= RAW_PARSE_PLPGSQL_ASSIGN1 && mode <= RAW_PARSE_PLPGSQL_ASSIGN3) {
    const a = splitAssignment(q);
    if (!a) return markOpaque(w, 'a PL/pgSQL assignment that cannot be read');
    if (a.target.includes('[')) nestedSql(`SELECT ${a.target}`, w); // subscripts are expressions
    nestedSql(`SELECT ${a.value}`, w);
  } else markOpaque(w, 'a PL/pgSQL expression that cannot be read');
}

/** SQL text inside a body: every statement is walked into the outer statement's Walk. */
function nestedSql(text: string, w: Walk): void {
  if (w.depth >= MAX_PROCEDURAL_DEPTH) return markOpaque(w, 'procedural code nested too deeply');
  let tree: { stmts?: ParsedStmt[] };
  try {
    tree = parseSync(text);
  } catch {
    return markOpaque(w, 'a statement in a procedural body does not parse');
  }
  const slicer = textSlicer(text);
  const saved = { root: w.root, rootText: w.rootText };
  w.depth++;
  for (const s of tree.stmts ?? []) {
    if (!s.stmt) continue;
    const start = s.stmt_location ?? 0;
    const [type] = Object.keys(s.stmt);
    w.root = s.stmt[type] as Obj;
    w.rootText = slicer(start, s.stmt_len ? start + s.stmt_len : undefined);
    walk(s.stmt, w, ROOT_CTX);
  }
  w.depth--;
  w.root = saved.root;
  w.rootText = saved.rootText;
}
