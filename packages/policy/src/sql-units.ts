/**
 * SQL text → policy Units, cached. Applications repeat the same statement texts, so the
 * cost of a repeated statement is one Map lookup; the cached objects are frozen and shared.
 */
import type { Result, Unit } from '@gatehouse/core';
import { classifySql, type SqlStatement } from './sql-classify.js';

/** Texts longer than this are classified every time (they are rarely repeated). */
export const SQL_CACHE_MAX_TEXT = 16 * 1024;
/** Entries per cache; the oldest-inserted entry is evicted first. */
export const SQL_CACHE_MAX_ENTRIES = 10_000;
/** Distinct `database` values that get their own cache (connectors normally have one). */
const MAX_DATABASES = 64;

export interface SqlUnitsOptions {
  /** Database the statement runs in; becomes `match.database` (rules may match on it). */
  database?: string;
}

type Cache = Map<string, Result<Unit[]>>;
const NO_DB = '\0';
const caches = new Map<string, Cache>();

/**
 * One Unit per statement of `sql` (type `statement`). An empty query gives [].
 * A parse error gives `policy.parse`; the connector denies unless configured otherwise.
 */
export function sqlUnits(sql: string, opts?: SqlUnitsOptions): Result<Unit[]> {
  const db = opts?.database ?? NO_DB;
  let cache = caches.get(db);
  const hit = cache?.get(sql);
  if (hit) return hit;
  const result = build(sql, opts?.database);
  // A parse error before initSqlParser() must not be cached: it would outlive init.
  if (sql.length > SQL_CACHE_MAX_TEXT || (!result.ok && result.error.message.startsWith('SQL parser not initialised'))) return result;
  if (!cache) {
    if (caches.size >= MAX_DATABASES) return result;
    cache = new Map();
    caches.set(db, cache);
  }
  if (cache.size >= SQL_CACHE_MAX_ENTRIES) cache.delete(cache.keys().next().value as string);
  cache.set(sql, result);
  return result;
}

/** Number of cached statement texts (all databases), for metrics and tests. */
export function sqlUnitCacheSize(): number {
  let n = 0;
  for (const c of caches.values()) n += c.size;
  return n;
}

function build(sql: string, database: string | undefined): Result<Unit[]> {
  const classified = classifySql(sql);
  if (!classified.ok) return Object.freeze(classified);
  const units = classified.value.map((s) => toUnit(s, database));
  return Object.freeze({ ok: true as const, value: Object.freeze(units) as Unit[] });
}

function toUnit(s: SqlStatement, database: string | undefined): Unit {
  const kinds = Object.freeze(s.kinds) as string[];
  const tables = Object.freeze(s.tables) as string[];
  const match: Unit['match'] = { statement: kinds, tables, where: s.where };
  if (database !== undefined) match.database = database;
  // `columns` is already frozen by the classifier: restricted SQL reads it per masked session.
  const context = Object.freeze({ kind: s.kind, kinds, tables, where: s.where, text: s.text, opaque: s.opaque, opaqueReason: s.opaqueReason, columns: s.columns });
  return Object.freeze({ type: 'statement' as const, text: s.text, match: Object.freeze(match), context });
}
