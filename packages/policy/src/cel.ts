/**
 * CEL `when:` conditions (@marcbachmann/cel-js; see docs/decisions/0300-cel-library.md).
 * Every expression is parsed and type-checked at startup; evaluation is a closure call.
 */
import { Environment } from '@marcbachmann/cel-js';
import type { Result } from '@gatehouse/core';
import { err, ok } from '@gatehouse/core';

export type Condition = (vars: Record<string, unknown>) => boolean;

/** CEL parse limits: a `when:` is one line of policy, never a program. */
const LIMITS = { maxAstNodes: 2000, maxDepth: 64, maxListElements: 1000, maxMapEntries: 1000, maxCallArguments: 16 };

/** One environment per connector type: only its own unit variable is declared. */
export function celEnvironment(unitVar: string | null): Environment {
  const env = new Environment({ limits: LIMITS, homogeneousAggregateLiterals: false });
  env.registerVariable('identity', 'dyn');
  env.registerVariable('connector', 'dyn');
  for (const v of unitVar ? [unitVar] : ['statement', 'request', 'command']) env.registerVariable(v, 'dyn');
  return env;
}

/**
 * Parse and type-check `source`. A typo in a variable name (`requst.json`) or an
 * impossible overload is a startup error rather than a rule that errors on every call.
 * The returned Condition throws on evaluation errors and on a non-boolean result; the
 * engine turns that into a fail-closed decision.
 */
export function compileCondition(env: Environment, source: string): Result<Condition> {
  let program: ReturnType<Environment['parse']>;
  try {
    program = env.parse(source);
  } catch (e) {
    return err('policy.config', firstLine((e as Error).message));
  }
  const checked = program.check() as { valid: boolean; type?: string; error?: Error };
  if (!checked.valid) return err('policy.config', firstLine(checked.error?.message ?? 'type check failed'));
  if (checked.type !== 'bool' && checked.type !== 'dyn') {
    return err('policy.config', `condition must be a boolean expression, not ${checked.type}`);
  }
  return ok((vars) => {
    const v: unknown = program(vars);
    if (typeof v !== 'boolean') throw new TypeError(`condition gave ${typeof v}, not a boolean`);
    return v;
  });
}

export function firstLine(s: string): string {
  const i = s.indexOf('\n');
  return (i < 0 ? s : s.slice(0, i)).trim();
}
