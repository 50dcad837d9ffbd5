/**
 * Rules → PolicyEngine. Firewall model: rules are tried in order and the FIRST rule that
 * matches decides; no match → allow. A rule matches when every `match:` key matches AND
 * its `when:` condition (if any) is true.
 */
import type { Action, Decision, Identity, PolicyEngine, Result, RuleConfig, Unit } from '@gatehouse/core';
import { err, ok } from '@gatehouse/core';
import { celEnvironment, compileCondition, firstLine, type Condition } from './cel.js';
import { compileAnyOf, compileGlob } from './glob.js';
import { SQL_KINDS } from './sql-kinds.js';
import { isKnownMatchKey, knownMatchKeys, starCrossesSlash, unitVariable } from './match-keys.js';

export { knownMatchKeys };

export interface CompilePolicyOptions {
  /** postgres | mysql | http | ssh: decides the valid `match:` keys and the CEL unit variable. */
  connectorType: string;
}

interface CompiledRule {
  name: string;
  action: Action;
  keys: string[];
  tests: ((attr: string | string[] | undefined) => boolean)[];
  when: Condition | null;
  /** Shared, frozen: a decision by this rule allocates nothing. */
  decision: Decision;
}

const DEFAULT_ALLOW: Decision = Object.freeze({ action: 'allow' as const });

/** Compile a connector's rules. Any bad rule fails the whole set; the error names the rule. */
export function compilePolicy(rules: RuleConfig[], opts: CompilePolicyOptions): Result<PolicyEngine> {
  const type = opts.connectorType;
  if (!knownMatchKeys(type)) return err('policy.config', `unknown connector type "${type}"`);
  const unitVar = unitVariable(type) as string;
  const env = celEnvironment(unitVar);
  const compiled: CompiledRule[] = [];
  const seen = new Set<string>();
  for (const [i, rule] of rules.entries()) {
    const label = rule.name ? `rule "${rule.name}"` : `rule #${i + 1}`;
    if (!rule.name) return err('policy.config', `${label}: a rule needs a name`);
    if (seen.has(rule.name)) return err('policy.config', `${label}: duplicate rule name`);
    seen.add(rule.name);
    if (rule.action !== 'allow' && rule.action !== 'deny' && rule.action !== 'review') {
      return err('policy.config', `${label}: action must be allow, deny or review`);
    }
    const entries = Object.entries(rule.match ?? {});
    if (entries.length === 0 && !rule.when) return err('policy.config', `${label}: needs a match block or a when condition`);
    const keys: string[] = [];
    const tests: CompiledRule['tests'] = [];
    for (const [key, values] of entries) {
      if (!isKnownMatchKey(type, key)) {
        return err('policy.config', `${label}: unknown match key "${key}" for ${type} connectors (known: ${knownMatchKeys(type)!.join(', ')})`);
      }
      const list = Array.isArray(values) ? values : [values];
      if (list.length === 0 || list.some((v) => typeof v !== 'string' || v === '')) {
        return err('policy.config', `${label}: match key "${key}" needs one or more non-empty strings`);
      }
      const dead = deadValue(type, key, list);
      if (dead !== null) return err('policy.config', `${label}: match key "${key}": "${dead}" can never match (known: ${KNOWN_VALUES[key].join(', ')})`);
      keys.push(key.startsWith('header.') ? key.toLowerCase() : key);
      tests.push(compileAnyOf(key === 'where' ? widenWhere(list) : list, { crossSlash: starCrossesSlash(type, key) }));
    }
    let when: Condition | null = null;
    if (rule.when !== undefined) {
      const c = compileCondition(env, rule.when);
      if (!c.ok) return err('policy.config', `${label}: invalid when condition: ${c.error.message}`);
      when = c.value;
    }
    compiled.push({ name: rule.name, action: rule.action, keys, tests, when, decision: ruleDecision(rule.name, rule.action) });
  }
  // Opaque procedural code (dynamic SQL, other languages, triggers) cannot be judged by
  // deny/review rules, so where any apply it is refused unless a rule allowed it first.
  const restrictive = compiled.some((r) => r.action !== 'allow');
  return ok(new FirstMatchPolicy(compiled, restrictive));
}

/**
 * Values SQL units can carry for closed-vocabulary keys: a rule value matching none of them
 * is a typo (`absnet`) that would make a silently dead rule, so it is refused at load.
 */
const KNOWN_VALUES: Record<string, readonly string[]> = {
  where: ['present', 'absent', 'trivial', 'n/a'],
  statement: [...SQL_KINDS, 'fetch', 'function_call', 'unknown'],
  /** SSH channel kinds (`subsystem` is any subsystem other than sftp). */
  channel: ['exec', 'shell', 'sftp', 'scp', 'direct-tcpip', 'subsystem'],
};

function deadValue(type: string, key: string, values: string[]): string | null {
  const closed = type === 'postgres' || type === 'mysql' || (type === 'ssh' && key === 'channel');
  if (!closed || !KNOWN_VALUES[key]) return null;
  for (const v of values) if (!KNOWN_VALUES[key].some((k) => compileGlob(v)(k))) return v;
  return null;
}

/**
 * A trivial WHERE (`WHERE true`, `1=1`, `id=id`) is no WHERE: a rule value matching
 * `absent` also matches `trivial`, so existing `where: absent` rules catch `DELETE … WHERE true`.
 */
function widenWhere(values: string[]): string[] {
  const matchesAbsent = values.some((v) => compileGlob(v)('absent'));
  return matchesAbsent && !values.some((v) => compileGlob(v)('trivial')) ? [...values, 'trivial'] : values;
}

/** Rule name of the implicit refusal of opaque procedural code. */
export const OPAQUE_RULE = 'opaque-procedure';
const opaqueDecisions = new Map<string, Decision>();

function opaqueDecision(why: string): Decision {
  let d = opaqueDecisions.get(why);
  if (!d) {
    const reason =
      `code that cannot be judged (${why || 'opaque'}) is refused while deny or review rules apply; ` +
      'a rule must allow it explicitly (e.g. match: { statement: [do] }, action: allow)';
    d = Object.freeze({ action: 'deny' as const, rule: OPAQUE_RULE, reason });
    if (opaqueDecisions.size < 64) opaqueDecisions.set(why, d);
  }
  return d;
}

function ruleDecision(name: string, action: Action): Decision {
  const reason = action === 'deny' ? `denied by rule "${name}"` : action === 'review' ? `rule "${name}" requires review` : undefined;
  return Object.freeze(reason ? { action, rule: name, reason } : { action, rule: name });
}

class FirstMatchPolicy implements PolicyEngine {
  constructor(
    private readonly rules: readonly CompiledRule[],
    /** Any deny or review rule: then opaque procedural code is refused by default. */
    private readonly restrictive: boolean,
  ) {}

  decide(unit: Unit, identity: Identity, connector: { name: string; type: string }): Decision {
    let vars: Record<string, unknown> | null = null; // built once, only if a condition runs
    for (const r of this.rules) {
      if (!matchesAll(r, unit)) continue;
      if (!r.when) return r.decision;
      vars ??= { identity, connector, [unit.type]: unit.context };
      let result: boolean;
      try {
        result = r.when(vars);
      } catch (e) {
        // Fail closed: an erroring condition makes a deny/review rule fire and an allow
        // rule not fire. The message names the rule, not values from the unit.
        if (r.action === 'allow') continue;
        return { action: r.action, rule: r.name, reason: `condition of rule "${r.name}" errored (${firstLine((e as Error).message)}); treated as matched` };
      }
      if (result) return r.decision;
    }
    if (this.restrictive && unit.context.opaque === true) return opaqueDecision(typeof unit.context.opaqueReason === 'string' ? unit.context.opaqueReason : '');
    return DEFAULT_ALLOW;
  }
}

function matchesAll(r: CompiledRule, unit: Unit): boolean {
  const m = unit.match;
  for (let i = 0; i < r.keys.length; i++) if (!r.tests[i](m[r.keys[i]])) return false;
  return true;
}
