/**
 * What the upstream server says about its own tables, views and routines, for restricted SQL
 * (masking follows `org_table`/`org_name` of each column definition and needs no catalog).
 *
 * Read from information_schema over a short connection of the connector's own (never a
 * caller's: its transaction or `USE` must not change what we see). A view's definition is
 * classified like any statement to learn which table columns it reads; one that cannot be
 * read (no SHOW VIEW privilege) or analysed counts as reading masked columns (fail closed).
 *
 * Loaded when the first masked caller arrives, after DDL through the gateway, after a
 * schema-change error, and at most every `CATALOG_TTL_MS` otherwise.
 */
import type { Socket } from 'node:net';
import { indexByName, qualifiedNames, RefreshingSnapshot } from '@gatehouse/connector-kit';
import type { Logger } from '@gatehouse/core';
import { classifyMysql } from '@gatehouse/policy';
import { encode, readErr, Reader } from './packet.js';
import { PacketReader } from './packet-reader.js';
import { CAP, COM, UTF8MB4_GENERAL_CI } from './protocol.js';
import { connectUpstream, type UpstreamTarget } from './upstream.js';

export const CATALOG_TTL_MS = 60_000;
/** A reload for something unknown happens at most this often. */
export const CATALOG_MIN_RELOAD_MS = 1000;
const MAX_CATALOG_PACKET = 16 * 1024 * 1024;
const SYSTEM_SCHEMAS = "('mysql','information_schema','performance_schema','sys')";

export interface Relation {
  schema: string;
  name: string;
  columns: string[];
  /** For views: the table columns the definition reads; 'unknown' when it cannot be analysed. */
  view: { schema: string; table: string; column: string }[] | 'unknown' | null;
}

export interface CatalogSnapshot {
  /** Lower-cased `name` and `schema.name` → relations. */
  readonly byName: ReadonlyMap<string, readonly Relation[]>;
  /** Lower-cased `name` and `schema.name` of stored functions and procedures. */
  readonly userFunctions: ReadonlySet<string>;
  readonly version: number;
}

export class Catalog extends RefreshingSnapshot<CatalogSnapshot> {
  constructor(
    private readonly target: UpstreamTarget,
    private readonly timeoutMs: number,
    log: Logger,
  ) {
    super((version) => this.read(version), { ttlMs: CATALOG_TTL_MS, minReloadMs: CATALOG_MIN_RELOAD_MS, log, what: 'catalog' });
  }

  private async read(version: number): Promise<CatalogSnapshot> {
    const caps = CAP.LONG_PASSWORD | CAP.PROTOCOL_41 | CAP.SECURE_CONNECTION | CAP.PLUGIN_AUTH | CAP.TRANSACTIONS | CAP.LONG_FLAG;
    const up = await connectUpstream(this.target, {
      callerCapabilities: caps,
      charset: UTF8MB4_GENERAL_CI,
      timeoutMs: this.timeoutMs,
      attributes: { program_name: 'gatehouse-catalog' },
    });
    if (!up.ok) throw new Error(`catalog connection: ${up.error.message}`);
    const s = up.value.socket;
    const timer = setTimeout(() => s.destroy(new Error('catalog query timed out')), this.timeoutMs);
    try {
      const cols = await textQuery(
        s,
        `SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA NOT IN ${SYSTEM_SCHEMAS} ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION`,
      );
      const views = await textQuery(s, `SELECT TABLE_SCHEMA, TABLE_NAME, VIEW_DEFINITION FROM information_schema.VIEWS WHERE TABLE_SCHEMA NOT IN ${SYSTEM_SCHEMAS}`);
      const routines = await textQuery(s, `SELECT ROUTINE_SCHEMA, ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA NOT IN ${SYSTEM_SCHEMAS}`);
      return build(cols, views, routines, version);
    } finally {
      clearTimeout(timer);
      if (!s.destroyed) s.end(encode(Buffer.from([COM.QUIT]), 0));
      s.destroy();
    }
  }
}

function build(cols: (string | null)[][], views: (string | null)[][], routines: (string | null)[][], version: number): CatalogSnapshot {
  const rels = new Map<string, Relation>();
  for (const [schema, table, column] of cols) {
    if (schema === null || table === null || column === null) continue;
    const key = `${schema}.${table}`;
    let r = rels.get(key);
    if (!r) rels.set(key, (r = { schema, name: table, columns: [], view: null }));
    r.columns.push(column);
  }
  const byName = indexByName(rels.values());
  for (const [schema, table, definition] of views) {
    if (schema === null || table === null) continue;
    const r = rels.get(`${schema}.${table}`);
    if (r) r.view = viewReads(definition, schema, byName);
  }
  return { byName, userFunctions: qualifiedNames(routines), version };
}

/** The table columns a view definition reads (every column, of every relation it names, that it mentions). */
function viewReads(definition: string | null, schema: string, byName: ReadonlyMap<string, readonly Relation[]>): Relation['view'] {
  if (!definition) return 'unknown'; // no SHOW VIEW privilege: cannot tell what it reads
  const c = classifyMysql(definition);
  if (!c.ok || c.value.length !== 1 || c.value[0].opaque) return 'unknown';
  const use = c.value[0].columns;
  const names = new Set([...use.output, ...use.expr]);
  const reads: { schema: string; table: string; column: string }[] = [];
  for (const rel of use.relations) {
    const candidates = byName.get(rel.includes('.') ? rel : `${schema}.${rel}`.toLowerCase()) ?? byName.get(rel) ?? [];
    for (const r of candidates) {
      const whole = use.wholeRows.includes(rel) || use.wholeRows.includes('?');
      for (const col of r.columns) if (whole || names.has(col.toLowerCase())) reads.push({ schema: r.schema, table: r.name, column: col });
      // A view over a view: what the inner one reads counts too (resolved when asked, see restricted-view.ts).
      if (r.view === 'unknown') return 'unknown';
      if (Array.isArray(r.view)) reads.push(...r.view);
    }
  }
  return reads;
}

/** Run one text query; its rows (NULL as null). Errors reject. */
export async function textQuery(s: Socket, sql: string): Promise<(string | null)[][]> {
  const reader = new PacketReader(s, MAX_CATALOG_PACKET);
  try {
    s.write(encode(Buffer.concat([Buffer.from([COM.QUERY]), Buffer.from(sql, 'utf8')]), 0));
    const first = await reader.next();
    if (!first) throw new Error('upstream closed the catalog connection');
    if (first.payload[0] === 0xff) throw new Error(`catalog query failed: ${readErr(first.payload).message}`);
    if (first.payload[0] === 0x00) return [];
    const n = new Reader(first.payload).lenencInt();
    for (let i = 0; i < n; i++) if (!(await reader.next())) throw new Error('catalog connection closed');
    const eof = await reader.next(); // EOF after the column definitions (no CLIENT_DEPRECATE_EOF here)
    if (!eof) throw new Error('catalog connection closed');
    const rows: (string | null)[][] = [];
    for (;;) {
      const p = await reader.next();
      if (!p) throw new Error('catalog connection closed');
      if (p.payload[0] === 0xfe && p.payload.length < 9) break;
      if (p.payload[0] === 0xff) throw new Error(`catalog query failed: ${readErr(p.payload).message}`);
      const r = new Reader(p.payload);
      const row: (string | null)[] = [];
      for (let i = 0; i < n; i++) {
        const len = r.lenenc();
        row.push(len === null ? null : r.bytes(len).toString('utf8'));
      }
      rows.push(row);
    }
    return rows;
  } finally {
    reader.detach();
  }
}
