/**
 * SQL text → policy Units for one caller (classification cached by @gatehouse/policy's
 * MySQL classifier); a text it cannot classify is refused unless `on_parse_error: allow`.
 */
import type { Decision, Judgement, Unit, Veto } from '@gatehouse/core';
import { mysqlUnits, restrictedSqlViolation, type RestrictedSqlView } from '@gatehouse/policy';

const PARSE_ERROR: Decision = Object.freeze({ action: 'deny' as const, rule: 'parse-error', reason: 'statement could not be classified' });
/** Rule name of a refusal by restricted SQL (masking_mode: restricted). */
export const RESTRICTED_RULE = 'masking-restricted';
/** Rule name of the refusal of LOAD DATA LOCAL INFILE that no rule allowed explicitly. */
export const LOCAL_INFILE_RULE = 'load-data-local';

/** A unit for text the classifier could not parse (or a command that is not SQL). */
export function opaqueUnit(text: string, kind = 'unknown', database?: string): Unit {
  const match: Unit['match'] = { statement: [kind], tables: [], where: 'n/a' };
  if (database !== undefined) match.database = database;
  return { type: 'statement', text, match, context: { kind, kinds: [kind], tables: [], where: 'n/a', text } };
}

export function unitsFor(sql: string, database: string, onParseError: 'deny' | 'allow', noBackslashEscapes: boolean): { units: readonly Unit[]; parseError: string | null } {
  const r = mysqlUnits(sql, { database, noBackslashEscapes });
  if (r.ok) return { units: r.value, parseError: null };
  if (onParseError === 'allow') return { units: [opaqueUnit(sql, 'unknown', database)], parseError: null };
  return { units: [opaqueUnit(sql, 'unknown', database)], parseError: r.error.message };
}

export function parseErrorJudgement(units: readonly Unit[]): Judgement {
  return { units, decisions: units.map(() => PARSE_ERROR), deny: PARSE_ERROR, denyIndex: 0 };
}

/** Restricted SQL for a masked caller, as the Session's veto. */
export function restrictedVeto(view: RestrictedSqlView): Veto {
  return (unit) => {
    const why = restrictedSqlViolation(unit, view);
    return why === null ? null : { action: 'deny', rule: RESTRICTED_RULE, reason: why.replace(/^gatehouse: /, '') };
  };
}

/**
 * LOAD DATA LOCAL INFILE makes the server read a file from the caller's machine through the
 * gateway: it runs only when a rule allowed it by name, never by the default allow.
 */
export function vetoLocalInfile(j: Judgement): Judgement {
  if (j.deny) return j;
  for (let i = 0; i < j.units.length; i++) {
    if (j.units[i].context.localInfile === true && j.decisions[i].action === 'allow' && !j.decisions[i].rule) {
      const decisions = [...j.decisions];
      decisions[i] = LOCAL_INFILE_VETO;
      return { units: j.units, decisions, deny: LOCAL_INFILE_VETO, denyIndex: i };
    }
  }
  return j;
}

const LOCAL_INFILE_VETO: Decision = Object.freeze({
  action: 'deny' as const,
  rule: LOCAL_INFILE_RULE,
  reason: 'LOAD DATA LOCAL INFILE is refused unless a rule allows it (match: { statement: [copy] }, action: allow)',
});
