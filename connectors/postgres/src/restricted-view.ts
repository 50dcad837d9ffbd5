/**
 * The catalog seen through one caller's masking rules: what restricted SQL asks while
 * deciding (is this relation holding a masked column? a view over one? a user function?).
 * Answers are cached per session and dropped when the catalog is reloaded.
 */
import type { Masker } from '@gatehouse/core';
import type { RestrictedSqlView } from '@gatehouse/policy';
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
    if (VALUE_BEARING_SYSTEM_VIEWS.has(key)) return `${key} (it shows values of other tables)`;
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
    if (VALUE_BEARING_SYSTEM_VIEWS.has(key)) return `${key} (it shows values of other tables)`;
    const snap = this.snapshot();
    if (!snap) return null;
    let hit = this.views.get(key);
    if (hit === undefined) {
      hit = null;
      for (const r of snap.byName.get(key) ?? []) if ((hit = this.readsMasked(snap, r, new Set()))) break;
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
    for (let a = 1; a < r.columns.length; a++) {
      const column = r.columns[a];
      if (column !== undefined && this.masker.maskedOrigin?.({ schema: r.schema, table: r.name, column })) return `${r.schema}.${r.name}.${column}`;
    }
    return null;
  }

  /** The first masked column a view's definition reads, through views over views. */
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
