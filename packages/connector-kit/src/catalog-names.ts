/**
 * How a catalog answers "which objects does this name, as written in SQL, mean?": by the
 * bare name (any schema — the parser cannot know the search path) and by `schema.name`,
 * both lower-cased. One place for the PostgreSQL and MySQL catalogs.
 */

/** Relations by lower-cased `name` and `schema.name` (a bare name may exist in several schemas). */
export function indexByName<R extends { schema: string; name: string }>(relations: Iterable<R>): Map<string, R[]> {
  const byName = new Map<string, R[]>();
  const add = (k: string, r: R) => {
    const key = k.toLowerCase();
    const list = byName.get(key);
    if (list) list.push(r);
    else byName.set(key, [r]);
  };
  for (const r of relations) {
    add(r.name, r);
    add(`${r.schema}.${r.name}`, r);
  }
  return byName;
}

/** Lower-cased `name` and `schema.name` of each (schema, name) pair; rows with a missing part are skipped. */
export function qualifiedNames(rows: Iterable<readonly (string | null | undefined)[]>): Set<string> {
  const names = new Set<string>();
  for (const [schema, name] of rows) {
    if (schema == null || name == null) continue;
    names.add(name.toLowerCase());
    names.add(`${schema}.${name}`.toLowerCase());
  }
  return names;
}
