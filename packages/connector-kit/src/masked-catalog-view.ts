/**
 * The catalog seen through one caller's masking rules: what restricted SQL (decision 0404)
 * asks while deciding — does this relation hold a masked column, is it a view over one, is
 * this a user function. Answers are cached per session and dropped whenever the connector's
 * catalog is reloaded (its snapshot's `version` changes). Each SQL connector says what its
 * database's relations look like (the three abstract methods); the caching and the lookups by
 * name are the same for all of them.
 */
import type { Masker } from '@gatehouse/core';

/** What a connector's catalog snapshot offers (see indexByName for `byName`). */
export interface NamedCatalogSnapshot<R> {
  /** Lower-cased `name` and `schema.name` → relations (a bare name may exist in several schemas). */
  readonly byName: ReadonlyMap<string, readonly R[]>;
  /** Lower-cased `name` and `schema.name` of user functions and procedures. */
  readonly userFunctions: ReadonlySet<string>;
  /** Increases with every load: the caches here key on it. */
  readonly version: number;
}

export abstract class MaskedCatalogView<S extends NamedCatalogSnapshot<R>, R> {
  private version = -1;
  private readonly relations = new Map<string, string | null>();
  private readonly views = new Map<string, string | null>();

  constructor(
    protected readonly masker: Masker,
    private readonly catalog: { readonly current: S | null },
  ) {}

  /** A system relation that shows values of other tables (statistics, other sessions' statements). */
  protected abstract valueBearing(key: string): boolean;
  /** The first masked column of `r` as `schema.table.column`, or null. */
  protected abstract firstMasked(r: R): string | null;
  /** Why reading view `r` would reveal a masked value (the column, or why it cannot be analysed); null for a view that does not, or no view. */
  protected abstract viewReveals(snap: S, r: R): string | null;

  maskedColumn(name: string): string | null {
    return this.masker.maskedColumn?.(name) ?? null;
  }

  relationMasked(rel: string): string | null {
    return this.lookup(rel, this.relations, (_snap, r) => this.firstMasked(r));
  }

  viewMasked(rel: string): string | null {
    return this.lookup(rel, this.views, (snap, r) => this.viewReveals(snap, r));
  }

  isUserFunction(name: string): boolean {
    return this.snapshot()?.userFunctions.has(name.toLowerCase()) ?? false;
  }

  /** The first answer of `test` over the relations a name may mean, cached for this catalog version. */
  private lookup(rel: string, cache: Map<string, string | null>, test: (snap: S, r: R) => string | null): string | null {
    const key = rel.toLowerCase();
    if (this.valueBearing(key)) return `${key} (it shows values of other tables)`;
    const snap = this.snapshot();
    if (!snap) return null;
    let hit = cache.get(key);
    if (hit === undefined) {
      hit = null;
      for (const r of snap.byName.get(key) ?? []) if ((hit = test(snap, r))) break;
      cache.set(key, hit);
    }
    return hit;
  }

  private snapshot(): S | null {
    const snap = this.catalog.current;
    if (snap && snap.version !== this.version) {
      this.version = snap.version;
      this.relations.clear();
      this.views.clear();
    }
    return snap;
  }
}
