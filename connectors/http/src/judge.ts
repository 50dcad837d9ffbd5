/**
 * What is judged for one request, and the decision. With a method override
 * (`method_override: judge`) the request is judged twice, as sent and as the method it
 * names, and the stricter decision stands: whether the upstream honours the override or
 * not, what it runs was allowed.
 */
import type { IncomingMessage } from 'node:http';
import type { Decision, ReviewOptions, Session, Unit } from '@gatehouse/core';
import { parseTarget, type Target } from './path.js';
import { overrideMethod, stripMethodParam } from './method-override.js';
import type { Maybe } from '@gatehouse/connector-kit';

export type Judged = { ok: true; target: Target; override: string | null } | { ok: false; detail: string };

/**
 * The request target as judged and forwarded, and the method an override names (null for
 * none, or when overrides are stripped: `_method` leaves the query here, override headers
 * leave with the upstream headers). A malformed or conflicting override is an error (400).
 */
export function judgedTarget(req: IncomingMessage, stripOverrides: boolean): Judged {
  const target = parseTarget(req.url);
  if (!target.ok) return { ok: false, detail: target.error.message };
  if (stripOverrides) {
    const query = stripMethodParam(target.value.query);
    return { ok: true, target: query === target.value.query ? target.value : { ...target.value, query }, override: null };
  }
  const override = overrideMethod(req.rawHeaders, target.value.query);
  if (!override.ok) return { ok: false, detail: override.error.message };
  return { ok: true, target: target.value, override: override.value };
}

const SEVERITY = { allow: 0, review: 1, deny: 2 } as const;

/**
 * The decision for the unit; a plain value unless a `review` rule holds it (then the request
 * waits for the approval). `review`: what a review binds besides the request line (the
 * body's hash).
 */
export function judgeUnit(session: Session, unit: Unit, override: string | null, review?: ReviewOptions): Maybe<Decision> {
  let decision = session.decide(unit);
  let decided = unit;
  if (override !== null && override !== unit.match.method && decision.action !== 'deny') {
    const as = asMethod(unit, override);
    const other = session.decide(as);
    if (SEVERITY[other.action] > SEVERITY[decision.action]) {
      decision = other;
      decided = as;
    }
  }
  return decision.action === 'review' ? session.review(decided, decision, review) : decision;
}

/** The unit as the policy sees it when run as `method`. */
function asMethod(unit: Unit, method: string): Unit {
  return { ...unit, match: { ...unit.match, method }, context: { ...unit.context, method } };
}
