/**
 * Audit accounting of one PostgreSQL conversation: which unit a completion, error or
 * refusal belongs to, what is recorded for it, and when the reply may go out (after the
 * event is as durable as the audit promises: the Session says, by answering synchronously
 * or with a promise).
 */
import type { Decision, Judgement, Recorded, Result, Session, Unit } from '@gatehouse/core';
import type { QueryExpected, ResultExpected } from './conversation.js';
import { DENIED_SQLSTATE } from './deny.js';
import { bindParams } from './frontend.js';
import { errorResponse } from './wire.js';

const AUDIT_FAILED = errorResponse({ code: '58000', message: 'gatehouse: audit log unavailable; result withheld' });

export interface UnitOutcome {
  status: string;
  rows?: number;
  error?: string;
}

export class StatementAudit {
  constructor(private readonly session: Session) {}

  /** The unit a result belongs to (the current statement of a simple query). */
  unitOf(e: ResultExpected): Unit | undefined {
    if (e.kind === 'query') return e.judgement.units[currentIndex(e)];
    return e.kind === 'execute' ? e.portal.statement.units[0] : e.unit;
  }

  /** One finished statement (completion or error); `override` replaces the decision (e.g. COPY refused). */
  result(e: ResultExpected, outcome: UnitOutcome, override: Decision | null = null): Recorded {
    const unit = this.unitOf(e);
    if (!unit) return OK;
    let decision: Decision;
    let params: (string | null)[] | undefined;
    if (e.kind === 'query') decision = e.judgement.decisions[currentIndex(e)];
    else if (e.kind === 'execute') {
      decision = e.portal.statement.decision;
      if (e.portal.bind) params = bindParams(e.portal.bind);
    } else decision = e.decision;
    const shape = e.kind === 'execute' && e.shapeFromPortal ? e.portal.shape : e.shape;
    return this.session.record({
      unit,
      decision: override ?? decision,
      startedAt: e.startedAt,
      result: { status: outcome.status, rows: outcome.rows, bytes: e.bytes, durationMs: Date.now() - e.startedAt, ...(outcome.error ? { error: outcome.error } : {}) },
      ...(params ? { params } : {}),
      ...(e.sample && shape ? { sample: { columns: shape.names, rows: e.sample } } : {}),
    });
  }

  /** Every statement of a refused message is recorded as refused (none of them ran). */
  refused(j: Judgement, startedAt: number, text: string): Recorded {
    const d = j.deny as Decision;
    return all(
      j.units.map((unit, i) =>
        this.session.record({
          unit,
          decision: i === j.denyIndex ? d : { action: 'deny', rule: d.rule },
          startedAt,
          result: { status: DENIED_SQLSTATE, error: i === j.denyIndex ? text : `not executed: ${text}` },
        }),
      ),
    );
  }

  /**
   * Statements of a simple query after one that failed never ran: PostgreSQL stops at the
   * first error. They are recorded as such (the caller sent them; an investigator wants them).
   */
  skipped(e: QueryExpected): Recorded | null {
    const units = e.judgement.units;
    if (!e.failed || e.index >= units.length) return null;
    const recs: Recorded[] = [];
    for (let i = e.index; i < units.length; i++) {
      recs.push(
        this.session.record({
          unit: units[i],
          decision: e.judgement.decisions[i],
          startedAt: e.startedAt,
          result: { status: 'skipped', error: 'not executed: an earlier statement of the same query failed' },
        }),
      );
    }
    return all(recs);
  }

  /**
   * Hand `reply` to `send` once its event is recorded as the audit promises; if it could not
   * be written, the caller gets an error instead of the reply (fail closed).
   */
  release(recorded: Recorded, reply: Buffer, send: (b: Buffer) => void): Promise<void> | void {
    if (!(recorded instanceof Promise)) return send(recorded.ok ? reply : AUDIT_FAILED);
    return recorded.then((r) => send(r.ok ? reply : AUDIT_FAILED));
  }
}

const OK: Result<void> = Object.freeze({ ok: true as const, value: undefined });

function currentIndex(e: QueryExpected): number {
  const n = e.judgement.units.length;
  return e.index < n ? e.index : n - 1;
}

/** Several records as one: the first failure, synchronous when all of them are. */
function all(recs: Recorded[]): Recorded {
  if (recs.length === 1) return recs[0];
  if (!recs.some((r) => r instanceof Promise)) return (recs as Result<void>[]).find((r) => !r.ok) ?? OK;
  return Promise.all(recs.map((r) => Promise.resolve(r))).then((rs) => rs.find((r) => !r.ok) ?? OK);
}
