/**
 * Masking rules → MaskingEngine. Rules are validated once; `forIdentity` picks the rules
 * that apply to a caller (applies_to / exempt) and returns a Masker, cached per distinct
 * set of applicable rules so sessions of the same kind of caller share one.
 */
import type { ColumnMaskPlan, ColumnOrigin, Identity, Masker, MaskingEngine, MaskingRuleConfig, Result, ValueMask } from '@gatehouse/core';
import { err, matchesSelector, ok } from '@gatehouse/core';
import { detectors, type DetectorName } from './detectors.js';
import { JsonMasker, type PathRule } from './json-mask.js';
import { parseJsonPath } from './json-path.js';
import { STRATEGY_NAMES, strategyFor, type Strategy } from './strategies.js';
import { maskWithDetectors, type ActiveDetector } from './text-mask.js';

export interface CompileMaskingOptions {
  /** Secret for the `hash` strategy (HMAC-SHA256). Required when any rule uses `with: hash`. */
  hashKey?: Buffer;
}

interface CompiledRule {
  config: MaskingRuleConfig;
  order: number;
  strategy: Strategy;
  nulls: boolean;
  columns: ColumnSpec[];
  paths: PathRule[];
  detectors: DetectorName[];
}

/** Distinct applicable-rule sets kept; beyond this a Masker is built per session. */
const MAX_CACHED_MASKERS = 1024;

export function compileMasking(rules: MaskingRuleConfig[], opts: CompileMaskingOptions = {}): Result<MaskingEngine> {
  const compiled: CompiledRule[] = [];
  for (const [order, r] of rules.entries()) {
    const label = `masking rule #${order + 1}`;
    if (!STRATEGY_NAMES.includes(r.with)) return err('masking.config', `${label}: unknown strategy "${String(r.with)}"`);
    if (r.with === 'hash' && (!opts.hashKey || opts.hashKey.length < 16)) {
      return err('masking.config', `${label}: with: hash needs a gateway hash key of at least 16 bytes`);
    }
    const strategy = strategyFor(r.with, opts.hashKey) as Strategy;
    const nulls = r.with === 'null';
    if (!r.columns?.length && !r.json?.length && !r.detectors?.length) {
      return err('masking.config', `${label}: needs columns, json or detectors`);
    }
    const columns: ColumnSpec[] = [];
    for (const c of r.columns ?? []) {
      const spec = columnSpec(c);
      if (!spec) return err('masking.config', `${label}: column "${String(c)}" must be column, table.column or schema.table.column`);
      columns.push(spec);
    }
    const paths: PathRule[] = [];
    for (const p of r.json ?? []) {
      const parsed = parseJsonPath(p);
      if (!parsed.ok) return err('masking.config', `${label}: ${parsed.error.message}`);
      paths.push({ segments: parsed.value, strategy, nulls, order });
    }
    for (const d of r.detectors ?? []) {
      if (!Object.hasOwn(detectors, d)) return err('masking.config', `${label}: unknown detector "${d}"`);
    }
    compiled.push({ config: r, order, strategy, nulls, columns, paths, detectors: (r.detectors ?? []) as DetectorName[] });
  }
  return ok(new RuleSetMaskingEngine(compiled));
}

/**
 * A column rule: `column`, `table.column` or `schema.table.column`, each part a
 * case-insensitive name where `*` matches any run of characters. Table and schema parts
 * only ever match a traced origin, never an output label.
 */
interface ColumnSpec {
  text: string;
  column: (name: string) => boolean;
  table: ((name: string) => boolean) | null;
  schema: ((name: string) => boolean) | null;
}

function columnSpec(text: unknown): ColumnSpec | null {
  if (typeof text !== 'string' || text === '') return null;
  const parts = text.split('.');
  if (parts.length > 3 || parts.some((p) => p === '')) return null;
  const column = nameMatcher(parts[parts.length - 1]);
  const table = parts.length >= 2 ? nameMatcher(parts[parts.length - 2]) : null;
  const schema = parts.length === 3 ? nameMatcher(parts[0]) : null;
  return { text, column, table, schema };
}

function specMatchesOrigin(s: ColumnSpec, o: ColumnOrigin): boolean {
  return s.column(o.column) && (!s.table || s.table(o.table)) && (!s.schema || s.schema(o.schema));
}

/** Case-insensitive name; `*` matches any run of characters. */
function nameMatcher(pattern: string): (name: string) => boolean {
  const lower = pattern.toLowerCase();
  if (!lower.includes('*')) return (n) => n === pattern || n === lower || n.toLowerCase() === lower;
  const re = new RegExp(
    '^' +
      lower
        .split('*')
        .map((s) => s.replace(/[\\^$.|?+()[\]{}]/g, '\\$&'))
        .join('.*') +
      '$',
    'i',
  );
  return (n) => re.test(n);
}

class RuleSetMaskingEngine implements MaskingEngine {
  private readonly cache = new Map<string, Masker>();

  constructor(private readonly rules: readonly CompiledRule[]) {}

  forIdentity(identity: Identity): Masker {
    let key = '';
    const applicable: CompiledRule[] = [];
    for (const r of this.rules) {
      const applies = (!r.config.applies_to || matchesSelector(r.config.applies_to, identity)) && !(r.config.exempt && matchesSelector(r.config.exempt, identity));
      key += applies ? '1' : '0';
      if (applies) applicable.push(r);
    }
    if (applicable.length === 0) return INACTIVE;
    const cached = this.cache.get(key);
    if (cached) return cached;
    const masker = new RuleSetMasker(applicable);
    if (this.cache.size < MAX_CACHED_MASKERS) this.cache.set(key, masker);
    return masker;
  }
}

const INACTIVE: Masker = Object.freeze({
  active: false,
  planColumns: (names: readonly string[]): ColumnMaskPlan => ({ columns: names.map(() => null), any: false }),
  maskedColumn: () => null,
  maskedOrigin: () => null,
  maskText: (t: string) => t,
  maskJson: (value: unknown) => ({ value, changed: false }),
});

class RuleSetMasker implements Masker {
  readonly active = true;
  private readonly columnRules: CompiledRule[];
  private readonly active_: ActiveDetector[];
  /** Detector mask for a column value (null strategy → whole value NULL), or null if none. */
  private readonly detectorMask: ValueMask | null;
  private readonly json: JsonMasker;

  constructor(rules: CompiledRule[]) {
    this.columnRules = rules.filter((r) => r.columns.length > 0);
    const seen = new Set<DetectorName>();
    this.active_ = [];
    for (const r of rules) {
      for (const d of r.detectors) {
        if (seen.has(d)) continue; // the first rule naming a detector decides its strategy
        seen.add(d);
        this.active_.push({ detector: detectors[d], strategy: r.strategy, nulls: r.nulls });
      }
    }
    const act = this.active_;
    this.detectorMask = act.length ? (v) => maskWithDetectors(v, act, false) : null;
    this.json = new JsonMasker(
      rules.flatMap((r) => r.paths),
      act,
    );
  }

  planColumns(names: readonly string[], origins?: readonly (ColumnOrigin | null)[]): ColumnMaskPlan {
    const columns = new Array<ValueMask | null>(names.length);
    let any = false;
    for (let i = 0; i < names.length; i++) {
      const m = this.columnMask(names[i], origins?.[i] ?? null);
      columns[i] = m;
      if (m) any = true;
    }
    return { columns, any };
  }

  maskedColumn(name: string): string | null {
    for (const r of this.columnRules) for (const s of r.columns) if (s.column(name)) return s.text;
    return null;
  }

  maskedOrigin(origin: ColumnOrigin): string | null {
    for (const r of this.columnRules) for (const s of r.columns) if (specMatchesOrigin(s, origin)) return s.text;
    return null;
  }

  maskText(text: string): string {
    return this.active_.length ? (maskWithDetectors(text, this.active_, true) as string) : text;
  }

  maskJson(value: unknown): { value: unknown; changed: boolean } {
    return this.json.mask(value);
  }

  /**
   * A traced origin decides; a one-part rule (`card_number`) also matches the output label,
   * so `SELECT x AS card_number` stays masked even where the origin is unknown.
   */
  private columnMask(name: string, origin: ColumnOrigin | null): ValueMask | null {
    for (const r of this.columnRules) {
      for (const s of r.columns) {
        if ((origin && specMatchesOrigin(s, origin)) || (!s.table && s.column(name))) return r.strategy;
      }
    }
    return this.detectorMask;
  }
}
