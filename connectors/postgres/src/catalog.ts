/**
 * What the upstream database says about its own relations, for masking by origin.
 *
 * A RowDescription names each column's table OID and attribute number; this cache turns
 * them into `schema.table.column`, so a masking rule follows the column through any alias.
 * It also knows which relations are views over which columns and which functions are not
 * built in, so restricted SQL can refuse what output tracing cannot follow.
 *
 * One cache per connector, loaded through a short-lived connection of its own with the
 * connector's credential (never through a caller's connection: a caller's transaction
 * state must not change what we see). Loaded when the first masked caller arrives,
 * reloaded after DDL passes through the gateway, when a RowDescription names an OID it
 * does not know, and at most every `CATALOG_TTL_MS` otherwise (DDL made by someone else).
 */
import { indexByName, qualifiedNames, RefreshingSnapshot } from '@gatehouse/connector-kit';
import type { ColumnOrigin, Logger } from '@gatehouse/core';
import { FrameReader } from './frame-reader.js';
import { connectUpstream, type UpstreamTarget } from './upstream.js';
import { B, parseErrorFields, queryMessage } from './wire.js';

/** Reload at most this often on an unknown OID; DDL through the gateway reloads at once. */
export const CATALOG_MIN_RELOAD_MS = 1000;
/** Changes made around the gateway are picked up within this time. */
export const CATALOG_TTL_MS = 60_000;
const MAX_CATALOG_MESSAGE = 16 * 1024 * 1024;

export interface Relation {
  oid: number;
  schema: string;
  name: string;
  /** pg_class.relkind: r table, p partitioned, v view, m materialised view, f foreign. */
  kind: string;
  /** Column names by attribute number (index 0 unused). */
  columns: string[];
  /** For views: the columns their definition reads, as (relation oid, attnum). */
  reads: [number, number][];
}

export interface CatalogSnapshot {
  readonly byOid: ReadonlyMap<number, Relation>;
  /** Lower-cased `name` and `schema.name` → relations (a bare name may exist in several schemas). */
  readonly byName: ReadonlyMap<string, readonly Relation[]>;
  /** Lower-cased `name` and `schema.name` of every function outside pg_catalog / information_schema. */
  readonly userFunctions: ReadonlySet<string>;
  /** Increases with every load: per-session caches key on it. */
  readonly version: number;
}

const QUERY = `
SELECT c.oid, n.nspname, c.relname, c.relkind, a.attnum, a.attname
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE c.relkind IN ('r','p','v','m','f') AND n.nspname NOT IN ('pg_catalog','information_schema') AND n.nspname NOT LIKE 'pg\\_toast%';
SELECT DISTINCT r.ev_class, d.refobjid, d.refobjsubid
  FROM pg_catalog.pg_rewrite r
  JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.objid = r.oid
   AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjsubid > 0 AND d.refobjid <> r.ev_class;
SELECT DISTINCT n.nspname, p.proname
  FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname NOT IN ('pg_catalog','information_schema');`;

export class Catalog extends RefreshingSnapshot<CatalogSnapshot> {
  constructor(
    private readonly target: UpstreamTarget,
    private readonly timeoutMs: number,
    log: Logger,
  ) {
    super((version) => this.read(version), { ttlMs: CATALOG_TTL_MS, minReloadMs: CATALOG_MIN_RELOAD_MS, log, what: 'catalog' });
  }

  /** Origin of a result column; undefined when the OID is unknown, null for "not a table column". */
  origin(oid: number, attnum: number): ColumnOrigin | null | undefined {
    if (oid === 0 || attnum <= 0) return null;
    const rel = this.current?.byOid.get(oid);
    if (!rel) return undefined;
    const column = rel.columns[attnum];
    return column === undefined ? undefined : { schema: rel.schema, table: rel.name, column };
  }

  private async read(version: number): Promise<CatalogSnapshot> {
    const up = await connectUpstream(this.target, { application_name: 'gatehouse-catalog' }, this.timeoutMs);
    if (!up.ok) throw new Error(`catalog connection: ${up.error.message}`);
    const s = up.value.socket;
    const timer = setTimeout(() => s.destroy(new Error('catalog query timed out')), this.timeoutMs);
    try {
      const sets = await simpleQuery(s, QUERY);
      return build(sets, version);
    } finally {
      clearTimeout(timer);
      s.end(Buffer.from([0x58, 0, 0, 0, 4])); // Terminate
      s.destroy();
    }
  }
}

function build(sets: string[][][], version: number): CatalogSnapshot {
  const [cols = [], deps = [], funcs = []] = sets;
  const byOid = new Map<number, Relation>();
  for (const [oid, schema, name, kind, attnum, attname] of cols) {
    const o = Number(oid);
    let rel = byOid.get(o);
    if (!rel) byOid.set(o, (rel = { oid: o, schema, name, kind, columns: [], reads: [] }));
    rel.columns[Number(attnum)] = attname;
  }
  for (const [view, ref, sub] of deps) byOid.get(Number(view))?.reads.push([Number(ref), Number(sub)]);
  return { byOid, byName: indexByName(byOid.values()), userFunctions: qualifiedNames(funcs), version };
}

/** Run one simple Query; every result set's rows as text (NULL as ''). */
async function simpleQuery(s: import('node:net').Socket, sql: string): Promise<string[][][]> {
  const reader = new FrameReader(s, MAX_CATALOG_MESSAGE);
  s.resume();
  s.write(queryMessage(sql));
  const sets: string[][][] = [];
  let rows: string[][] | null = null;
  let error: string | null = null;
  try {
    for (;;) {
      const f = await reader.next();
      if (!f) throw new Error('upstream closed the catalog connection');
      const b = f.bytes;
      if (f.type === B.RowDescription) sets.push((rows = []));
      else if (f.type === B.DataRow && rows) rows.push(dataRowText(b));
      else if (f.type === B.ErrorResponse) {
        const e = parseErrorFields(b);
        error = `${e.code}: ${e.message}`;
      } else if (f.type === B.ReadyForQuery) break;
    }
  } finally {
    reader.detach();
  }
  if (error) throw new Error(`catalog query failed: ${error}`);
  return sets;
}

function dataRowText(b: Buffer): string[] {
  const n = b.readInt16BE(5);
  const out = new Array<string>(n);
  let pos = 7;
  for (let i = 0; i < n; i++) {
    const len = b.readInt32BE(pos);
    pos += 4;
    out[i] = len < 0 ? '' : b.toString('utf8', pos, pos + len);
    if (len > 0) pos += len;
  }
  return out;
}
