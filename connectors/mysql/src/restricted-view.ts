/**
 * The catalog seen through one caller's masking rules: what restricted SQL asks while
 * deciding (does this relation hold a masked column? is it a view over one? a stored
 * routine?), on the kit's MaskedCatalogView (caching per catalog version, lookups by name).
 */
import type { Masker } from '@gatehouse/core';
import type { RestrictedSqlView } from '@gatehouse/policy';
import { MaskedCatalogView } from '@gatehouse/connector-kit';
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

export class CatalogRestrictedView extends MaskedCatalogView<CatalogSnapshot, Relation> implements RestrictedSqlView {
  constructor(masker: Masker, catalog: Catalog) {
    super(masker, catalog);
  }

  protected valueBearing(key: string): boolean {
    return VALUE_BEARING.has(key) || key.startsWith('sys.');
  }

  protected firstMasked(r: Relation): string | null {
    for (const column of r.columns) {
      if (this.masker.maskedOrigin?.({ schema: r.schema, table: r.name, column })) return `${r.schema}.${r.name}.${column}`;
    }
    return null;
  }

  /** MySQL keeps a view's column origins (information_schema.view_column_usage). */
  protected viewReveals(_snap: CatalogSnapshot, r: Relation): string | null {
    if (r.view === 'unknown') return `${r.schema}.${r.name} (its definition cannot be analysed)`;
    for (const o of r.view ?? []) if (this.masker.maskedOrigin?.(o)) return `${o.schema}.${o.table}.${o.column}`;
    return null;
  }
}
