/**
 * The catalog seen through one caller's masking rules: what restricted SQL asks while
 * deciding (does this relation hold a masked column? is it a view over one? a stored
 * routine?). Answers are cached per session and dropped when the catalog is reloaded.
 */
import type { Masker } from '@gatehouse/core';
import type { RestrictedSqlView } from '@gatehouse/policy';
import type { Catalog, CatalogSnapshot, Relation } from './catalog.js';

/**
 * System tables and views that show values of user tables (other sessions' statement texts,
 * column statistics with minimum and maximum values, query logs).
 */
const VALUE_BEARING = new Set(
  [
    'information_schema.processlist',
    'information_schema.column_statistics',
    'mysql.column_stats',
    'mysql.general_log',
    'mysql.slow_log',
    'performance_schema.events_statements_current',
    'performance_schema.events_statements_history',
    'performance_schema.events_statements_history_long',
    'performance_schema.events_statements_summary_by_digest',
    'performance_schema.prepared_statements_instances',
    'performance_schema.threads',
  ].flatMap((n) => [n, n.slice(n.indexOf('.') + 1)]),
);

/** Built-ins whose result cannot be traced to columns: they read server files or run SQL given as text. */
const UNTRACEABLE_FUNCTIONS = new Set(['load_file', 'sys_exec', 'sys_eval']);

export function untraceableFunction(functions: readonly string[]): string | null {
  for (const f of functions) {
    const bare = f.slice(f.lastIndexOf('.') + 1);
    if (UNTRACEABLE_FUNCTIONS.has(bare)) return f;
  }
  return null;
}

export class CatalogRestrictedView implements RestrictedSqlView {
  private version = -1;
  private readonly relations = new Map<string, string | null>();
  private readonly views = new Map<string, string | null>();

  constructor(
    private readonly masker: Masker,
    private readonly catalog: Catalog,
  ) {}

  maskedColumn(name: string): string | null {
    return this.masker.maskedColumn?.(name) ?? null;
  }

  relationMasked(rel: string): string | null {
    const key = rel.toLowerCase();
    if (valueBearing(key)) return `${key} (it shows values of other tables)`;
    const snap = this.snapshot();
    if (!snap) return null;
    let hit = this.relations.get(key);
    if (hit === undefined) {
      hit = null;
      for (const r of snap.byName.get(key) ?? []) if ((hit = this.firstMasked(r))) break;
      this.relations.set(key, hit);
    }
    return hit;
  }

  viewMasked(rel: string): string | null {
    const key = rel.toLowerCase();
    if (valueBearing(key)) return `${key} (it shows values of other tables)`;
    const snap = this.snapshot();
    if (!snap) return null;
    let hit = this.views.get(key);
    if (hit === undefined) {
      hit = null;
      for (const r of snap.byName.get(key) ?? []) {
        if (r.view === 'unknown') hit = `${r.schema}.${r.name} (its definition cannot be analysed)`;
        else if (r.view) {
          for (const o of r.view) {
            if (this.masker.maskedOrigin?.(o)) {
              hit = `${o.schema}.${o.table}.${o.column}`;
              break;
            }
          }
        }
        if (hit) break;
      }
      this.views.set(key, hit);
    }
    return hit;
  }

  isUserFunction(name: string): boolean {
    return this.snapshot()?.userFunctions.has(name.toLowerCase()) ?? false;
  }

  private snapshot(): CatalogSnapshot | null {
    const snap = this.catalog.current;
    if (snap && snap.version !== this.version) {
      this.version = snap.version;
      this.relations.clear();
      this.views.clear();
    }
    return snap;
  }

  private firstMasked(r: Relation): string | null {
    for (const column of r.columns) {
      if (this.masker.maskedOrigin?.({ schema: r.schema, table: r.name, column })) return `${r.schema}.${r.name}.${column}`;
    }
    return null;
  }
}

function valueBearing(key: string): boolean {
  return VALUE_BEARING.has(key) || key.startsWith('sys.');
}
