/**
 * The catalog seen through one caller's masking rules: what restricted SQL asks while
 * deciding (is this relation holding a masked column? a view over one? a user function?).
 * On the kit's MaskedCatalogView (caching per catalog version, lookups by name).
 */
import type { Masker } from '@gatehouse/core';
import type { RestrictedSqlView } from '@gatehouse/policy';
import { MaskedCatalogView } from '@gatehouse/connector-kit';
import type { Catalog, CatalogSnapshot, Relation } from './catalog.js';

/**
 * System views that show column values of user tables (planner statistics, other
 * sessions' query texts): a masked caller reading them could see masked values.
 */
const VALUE_BEARING_SYSTEM_VIEWS = new Set(
  [
    'pg_stats',
    'pg_stats_ext',
    'pg_stats_ext_exprs',
    'pg_statistic',
    'pg_statistic_ext_data',
    'pg_stat_activity',
    'pg_stat_statements',
    'pg_prepared_statements',
    'pg_cursors',
  ].flatMap((n) => [n, `pg_catalog.${n}`, `public.${n}`]),
);

export class CatalogRestrictedView extends MaskedCatalogView<CatalogSnapshot, Relation> implements RestrictedSqlView {
  constructor(masker: Masker, catalog: Catalog) {
    super(masker, catalog);
  }

  protected valueBearing(key: string): boolean {
    return VALUE_BEARING_SYSTEM_VIEWS.has(key);
  }

  protected firstMasked(r: Relation): string | null {
    for (let a = 1; a < r.columns.length; a++) {
      const column = r.columns[a];
      if (column !== undefined && this.masker.maskedOrigin?.({ schema: r.schema, table: r.name, column })) return `${r.schema}.${r.name}.${column}`;
    }
    return null;
  }

  protected viewReveals(snap: CatalogSnapshot, r: Relation): string | null {
    return this.readsMasked(snap, r, new Set());
  }

  /** The first masked column a view's definition reads (pg_depend), through views over views. */
  private readsMasked(snap: CatalogSnapshot, r: Relation, seen: Set<number>): string | null {
    if (r.kind !== 'v' && r.kind !== 'm') return null;
    seen.add(r.oid);
    for (const [oid, attnum] of r.reads) {
      const dep = snap.byOid.get(oid);
      if (!dep) continue;
      const column = dep.columns[attnum];
      if (column !== undefined && this.masker.maskedOrigin?.({ schema: dep.schema, table: dep.name, column })) return `${dep.schema}.${dep.name}.${column}`;
      if (!seen.has(dep.oid)) {
        const deeper = this.readsMasked(snap, dep, seen);
        if (deeper) return deeper;
      }
    }
    return null;
  }
}
