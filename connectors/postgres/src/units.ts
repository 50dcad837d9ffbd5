/**
 * SQL text → policy Units for one caller. Parsing is cached by @gatehouse/policy; a text the
 * parser rejects is refused unless `on_parse_error: allow`.
 */
import type { Decision, Judgement, Unit, Veto } from '@gatehouse/core';
import { restrictedSqlViolation, sqlUnits, type RestrictedSqlView } from '@gatehouse/policy';

const PARSE_ERROR: Decision = Object.freeze({ action: 'deny' as const, rule: 'parse-error', reason: 'statement could not be classified' });
/** Rule name of a refusal by restricted SQL (masking_mode: restricted). */
export const RESTRICTED_RULE = 'masking-restricted';

/** A unit for text the classifier could not parse (only used with `on_parse_error: allow`). */
export function opaqueUnit(text: string, kind = 'unknown'): Unit {
  return { type: 'statement', text, match: { statement: [kind], tables: [], where: 'n/a' }, context: { kind, kinds: [kind], tables: [], where: 'n/a', text } };
}

export function unitsFor(sql: string, database: string, onParseError: 'deny' | 'allow'): { units: readonly Unit[]; parseError: string | null } {
  const r = sqlUnits(sql, { database });
  if (r.ok) return { units: r.value, parseError: null };
  if (onParseError === 'allow') return { units: [opaqueUnit(sql)], parseError: null };
  return { units: [opaqueUnit(sql)], parseError: r.error.message };
}

/** Text the parser rejected: refused whole, nothing of it is judged further. */
export function parseErrorJudgement(units: readonly Unit[]): Judgement {
  return { units, decisions: units.map(() => PARSE_ERROR), deny: PARSE_ERROR, denyIndex: 0 };
}

/**
 * Restricted SQL as the Session's veto: a statement the rules allow but whose output
 * masking could not follow (an expression over a masked column, a whole-row reference, a
 * view over a masked column, a user function, procedural code) is refused.
 */
export function restrictedVeto(view: RestrictedSqlView): Veto {
  return (unit) => {
    const why = restrictedSqlViolation(unit, view);
    return why === null ? null : { action: 'deny', rule: RESTRICTED_RULE, reason: why.replace(/^gatehouse: /, '') };
  };
}
