/**
 * SQL text → policy Units and decisions for one caller. Parsing is cached by
 * @gatehouse/policy; a text the parser rejects is refused unless `on_parse_error: allow`.
 */
import type { Decision, Session, Unit } from '@gatehouse/core';
import { restrictedSqlViolation, sqlUnits, type RestrictedSqlView } from '@gatehouse/policy';

export interface Judged {
  units: readonly Unit[];
  /** One per unit (allow decisions keep the allowing rule for the audit). */
  decisions: Decision[];
  /** The first refusal, if any: one refused statement refuses the whole message. */
  deny: Decision | null;
  /** Index of the refused unit. */
  denyIndex: number;
}

const PARSE_ERROR_RULE = 'parse-error';
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

/**
 * Decide every unit; `review` decisions are settled by the Session (async). `restricted`
 * (a masked caller under `masking_mode: restricted`) refuses a statement the rules allow
 * but whose output masking could not follow: an expression over a masked column, a
 * whole-row reference, a view over a masked column, a user function, procedural code.
 */
export function judge(session: Session, units: readonly Unit[], parseError: string | null, restricted: RestrictedSqlView | null = null): Judged | Promise<Judged> {
  if (parseError !== null) {
    const d: Decision = { action: 'deny', rule: PARSE_ERROR_RULE, reason: 'statement could not be classified' };
    return { units, decisions: units.map(() => d), deny: d, denyIndex: 0 };
  }
  const decisions: Decision[] = new Array(units.length);
  let review = false;
  for (let i = 0; i < units.length; i++) {
    let d = session.decide(units[i]);
    if (restricted && d.action !== 'deny') {
      const why = restrictedSqlViolation(units[i], restricted);
      if (why !== null) d = { action: 'deny', rule: RESTRICTED_RULE, reason: why.replace(/^gatehouse: /, '') };
    }
    decisions[i] = d;
    if (d.action === 'review') review = true;
  }
  if (!review) return settle(units, decisions);
  // A hard refusal anywhere refuses the message: nobody needs to be asked about the rest.
  const hard = decisions.findIndex((d) => d.action === 'deny');
  if (hard >= 0) return { units, decisions, deny: decisions[hard], denyIndex: hard };
  return (async () => {
    for (let i = 0; i < units.length; i++) {
      if (decisions[i].action === 'review') decisions[i] = await session.review(units[i], decisions[i]);
    }
    return settle(units, decisions);
  })();
}

function settle(units: readonly Unit[], decisions: Decision[]): Judged {
  for (let i = 0; i < decisions.length; i++) {
    if (decisions[i].action !== 'allow') return { units, decisions, deny: decisions[i], denyIndex: i };
  }
  return { units, decisions, deny: null, denyIndex: -1 };
}
