/**
 * "Restricted SQL" for masked callers. The PostgreSQL connector masks result columns by
 * origin (table OID + attribute number), so a masked column is safe only where PostgreSQL
 * reports that origin: as a bare output column of a plain SELECT. Everywhere else — inside
 * an expression, a WHERE (an oracle: `WHERE card_number LIKE '4111%'`), a whole-row value,
 * a function — the value (or facts about it) would reach the caller untraced.
 *
 * The column-use summary (`SqlColumnUse`) is computed once per statement text by the
 * classifier and frozen on `unit.context.columns`; `restrictedSqlViolation` only looks
 * names up in the caller's view, so it costs a handful of Map lookups per statement.
 */
import type { Unit } from '@gatehouse/core';

export interface SqlColumnUse {
  /** Lower-cased column names referenced as bare top-level output columns of the outermost plain SELECT (also through PREPARE … AS / DECLARE … CURSOR FOR / EXPLAIN): allowed, because the connector masks them by origin. */
  output: readonly string[];
  /** Lower-cased column names (the last identifier of a ColumnRef) referenced anywhere else: inside a function call, operator, cast, WHERE/ORDER BY/GROUP BY/HAVING, aggregate, window, subquery, CTE, set-operation (UNION…) arm, RETURNING, INSERT … SELECT, UPDATE SET, CREATE TABLE AS, and everywhere inside procedural bodies. */
  expr: readonly string[];
  /** Whole-row references: a relation or alias used as a value (`t`, `t.*` inside an expression, `row_to_json(t)`, `SELECT t FROM cards t`): the lower-cased relation name it refers to (resolve aliases to the relation name, schema-qualified as written), or '?' if it refers to a subquery, CTE or function. */
  wholeRows: readonly string[];
  /** Functions called, lower-cased, schema-qualified as written (`public.f`) else bare. */
  functions: readonly string[];
  /** Relations read (as `tables` today, lower-cased). */
  relations: readonly string[];
}

export interface RestrictedSqlView {
  /** The masking spec (as configured) masking a column with this bare name in any table, or null. */
  maskedColumn(name: string): string | null;
  /** For a relation name as written: the first masked column it holds (`public.cards.card_number`), or null; unknown relations return null. */
  relationMasked(rel: string): string | null;
  /** For a view or materialised view as written: the first masked column its definition reads, or null. */
  viewMasked(rel: string): string | null;
  /** True for functions that are not built in (user-defined, extension). */
  isUserFunction(name: string): boolean;
}

/**
 * Built-ins whose result cannot be traced to columns because they run SQL given as text, or
 * read whole tables, other sessions' query texts, server files or the WAL. Matched on the
 * bare name (a `pg_catalog.` or other schema prefix is ignored). Keep this the one list.
 */
const UNTRACEABLE_BUILTINS: readonly RegExp[] = [
  /^(query|table|cursor|schema|database)_to_xml(schema|_and_xmlschema)?$/, // run a query / dump a table
  /^dblink(_\w+)?$/, // dblink, dblink_exec, dblink_open, dblink_fetch, dblink_send_query, …
  /^ts_stat$/, // ts_stat('SELECT … FROM cards') runs its argument
  /^pg_read_(binary_)?file$/, // server files: data files, logs with statement texts
  /^pg_logical_slot_(get|peek)_(binary_)?changes$/, // row images from the WAL
  /^pg_stat_get_(activity|backend_activity)$/, // other sessions' statement texts
];

export function isUntraceableBuiltin(name: string): boolean {
  const dot = name.lastIndexOf('.');
  const bare = dot < 0 ? name : name.slice(dot + 1);
  for (const re of UNTRACEABLE_BUILTINS) if (re.test(bare)) return true;
  return false;
}

/** Why a masked caller may not run this statement (a message naming the column or construct), or null. */
export function restrictedSqlViolation(unit: Unit, view: RestrictedSqlView): string | null {
  const ctx = unit.context;
  if (ctx.opaque === true) {
    return `gatehouse: code that cannot be analysed (${typeof ctx.opaqueReason === 'string' && ctx.opaqueReason !== '' ? ctx.opaqueReason : 'opaque'}) is refused while masking applies to you`;
  }
  const c = ctx.columns as SqlColumnUse | undefined;
  if (!c) return 'gatehouse: this statement could not be analysed for masking and is refused while masking applies to you';
  for (const name of c.expr) {
    const spec = view.maskedColumn(name);
    if (spec !== null) return `gatehouse: column "${name}" is masked for you (rule ${spec}); it may only be selected as a bare column, not inside an expression`;
  }
  for (const rel of c.wholeRows) {
    if (rel === '?') return 'gatehouse: a whole-row reference to a subquery, CTE or function is refused while masking applies to you; select its columns by name';
    const col = view.relationMasked(rel);
    if (col !== null) return `gatehouse: a whole-row reference to "${rel}" includes masked column "${col}"; select its columns by name`;
  }
  for (const f of c.functions) {
    if (isUntraceableBuiltin(f)) return `gatehouse: function "${f}" runs SQL or reads data that cannot be traced to columns; it is refused while masking applies to you`;
    if (view.isUserFunction(f)) return `gatehouse: function "${f}" is not built in; it is refused while masking applies to you`;
  }
  for (const rel of c.relations) {
    const col = view.viewMasked(rel);
    if (col !== null) return `gatehouse: view "${rel}" reads masked column "${col}"; it is refused while masking applies to you`;
  }
  return null;
}
