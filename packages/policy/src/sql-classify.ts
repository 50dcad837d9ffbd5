/**
 * SQL classification with the real PostgreSQL parser (libpg-query, PostgreSQL 17, WASM).
 *
 * We walk the parse tree rather than pattern-match text, so comments, dollar quoting,
 * multi-statement strings and nested data-modifying statements cannot hide a DELETE.
 */
import { loadModule, parseSync } from 'libpg-query';
import type { Result } from '@gatehouse/core';
import { err, ok } from '@gatehouse/core';
import { kindOfNode, kindsInDoBody, NESTED_IGNORED_KINDS } from './sql-kinds.js';

export interface SqlStatement {
  /** Kind of the top-level statement (`select`, `delete`, `create`, … or `other`). */
  kind: string;
  /** `kind` plus every nested kind that can change data (CTE DML, EXPLAIN, PREPARE, COPY (…)). */
  kinds: string[];
  /** Every relation named anywhere in the tree, schema-qualified as written. */
  tables: string[];
  /** For UPDATE/DELETE (also nested): `absent` if any lacks a WHERE clause. Else `n/a`. */
  where: 'present' | 'absent' | 'n/a';
  /** This statement's own slice of the (possibly multi-statement) input, trimmed. */
  text: string;
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

interface ParsedStmt {
  stmt?: Record<string, unknown>;
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
    tree = parseSync(sql) as { stmts?: ParsedStmt[] };
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

/** Mutable scratch for one statement's walk. */
interface Walk {
  kinds: Set<string>;
  tables: Set<string>;
  /** Count of UPDATE/DELETE nodes seen, and of those lacking WHERE. */
  writes: number;
  unfiltered: number;
}

function classifyStatement(stmt: Record<string, unknown>, text: string): SqlStatement {
  const [type] = Object.keys(stmt);
  const kind = kindOfNode(type, stmt[type] as Record<string, unknown>);
  const w: Walk = { kinds: new Set([kind]), tables: new Set(), writes: 0, unfiltered: 0 };
  walk(stmt, w, EMPTY_SCOPE);
  return {
    kind,
    kinds: [...w.kinds],
    tables: [...w.tables],
    where: w.writes === 0 ? 'n/a' : w.unfiltered > 0 ? 'absent' : 'present',
    text,
  };
}

const EMPTY_SCOPE: ReadonlySet<string> = new Set();
/** Nodes that carry a WITH clause whose CTE names shadow relations in their body. */
const WITH_HOLDERS = new Set(['SelectStmt', 'InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt']);

/**
 * Generic walk of the JSON parse tree. `ctes` holds the CTE names visible here, so a
 * reference to a CTE is not reported as a table — but `WITH users AS (SELECT * FROM users)`
 * still reports the real `users` read inside the (non-recursive) CTE body.
 */
function walk(node: unknown, w: Walk, ctes: ReadonlySet<string>): void {
  if (Array.isArray(node)) {
    for (const n of node) walk(n, w, ctes);
    return;
  }
  if (node === null || typeof node !== 'object') return;
  const obj = node as Record<string, unknown>;
  // A RangeVar appears both wrapped (`{RangeVar: {…}}`) and bare in typed fields
  // (`DeleteStmt.relation`, `IntoClause.rel`), so it is recognised by its shape.
  if (typeof obj.relname === 'string' && 'relpersistence' in obj) addRangeVar(obj, w, ctes);
  for (const key in obj) {
    const child = obj[key];
    if (child === null || typeof child !== 'object') continue;
    if (isNodeTypeName(key)) {
      const body = child as Record<string, unknown>;
      const kind = kindOfNode(key, body);
      if (!NESTED_IGNORED_KINDS.has(kind)) w.kinds.add(kind);
      if (key === 'UpdateStmt' || key === 'DeleteStmt') {
        w.writes++;
        if (!body.whereClause) w.unfiltered++;
      } else if (key === 'DropStmt') addDropped(body, w);
      else if (key === 'DoStmt') for (const k of kindsInDoBody(doBody(body))) w.kinds.add(k);
      if (WITH_HOLDERS.has(key) && body.withClause) {
        walkWithHolder(body, w, ctes);
        continue;
      }
    }
    walk(child, w, ctes);
  }
}

/** Relation-like objects a DROP names as lists of strings rather than RangeVars. */
const DROPPED_RELATIONS = new Set(['OBJECT_TABLE', 'OBJECT_VIEW', 'OBJECT_MATVIEW', 'OBJECT_FOREIGN_TABLE', 'OBJECT_SEQUENCE', 'OBJECT_INDEX']);

function addDropped(body: Record<string, unknown>, w: Walk): void {
  if (!DROPPED_RELATIONS.has(body.removeType as string)) return;
  for (const o of (body.objects ?? []) as { List?: { items?: { String?: { sval?: string } }[] } }[]) {
    const parts = (o.List?.items ?? []).map((i) => i.String?.sval ?? '');
    if (parts.length > 0 && parts.every((p) => p !== '')) w.tables.add(parts.join('.'));
  }
}

function doBody(body: Record<string, unknown>): string {
  for (const a of (body.args ?? []) as { DefElem?: { defname?: string; arg?: { String?: { sval?: string } } } }[]) {
    if (a.DefElem?.defname === 'as') return a.DefElem.arg?.String?.sval ?? '';
  }
  return '';
}

/** A statement with WITH: CTE bodies see earlier siblings (all of them if RECURSIVE). */
function walkWithHolder(body: Record<string, unknown>, w: Walk, outer: ReadonlySet<string>): void {
  const withClause = body.withClause as { ctes?: { CommonTableExpr?: { ctename?: string; ctequery?: unknown } }[]; recursive?: boolean };
  const ctes = (withClause.ctes ?? []).map((c) => c.CommonTableExpr ?? {});
  const all = new Set(outer);
  for (const c of ctes) if (c.ctename) all.add(c.ctename);
  const visible = new Set(outer);
  for (const c of ctes) {
    if (withClause.recursive) walk(c.ctequery, w, all);
    else {
      walk(c.ctequery, w, visible);
      if (c.ctename) visible.add(c.ctename);
    }
  }
  for (const key in body) if (key !== 'withClause') walk(body[key], w, all);
}

function addRangeVar(rv: Record<string, unknown>, w: Walk, ctes: ReadonlySet<string>): void {
  const rel = rv.relname as string | undefined;
  if (!rel) return;
  const schema = rv.schemaname as string | undefined;
  const catalog = rv.catalogname as string | undefined;
  if (!schema && !catalog && ctes.has(rel)) return; // a CTE reference, not a relation
  w.tables.add(catalog ? `${catalog}.${schema}.${rel}` : schema ? `${schema}.${rel}` : rel);
}

/** Parse-tree node type names are PascalCase keys (`DeleteStmt`, `CreateTableAsStmt`). */
function isNodeTypeName(key: string): boolean {
  const c = key.charCodeAt(0);
  return c >= 65 && c <= 90 && key.endsWith('Stmt');
}
