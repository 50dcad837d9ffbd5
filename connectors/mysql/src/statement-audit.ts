/**
 * Audit accounting of one MySQL conversation: one `unit` event per statement of a COM_QUERY,
 * per COM_STMT_EXECUTE and per COM_STMT_FETCH, per refused command, and for COM_INIT_DB /
 * COM_FIELD_LIST; and when the statement's final packet may go out (after its event is as
 * durable as the audit promises: the Session answers synchronously or with a promise).
 */
import type { Decision, Judgement, Recorded, Result, Session, Unit } from '@gatehouse/core';
import { encode, errPayload } from './packet.js';

export const DENIED_CODE = 1142;
export const DENIED_SQLSTATE = '42000';

export interface Outcome {
  status: string;
  rows?: number;
  bytes: number;
  error?: string;
  params?: (string | null)[];
  sample?: { columns: string[]; rows: (string | null)[][] } | null;
}

const OK: Result<void> = Object.freeze({ ok: true as const, value: undefined });

export class StatementAudit {
  constructor(private readonly session: () => Session) {}

  result(unit: Unit, decision: Decision, startedAt: number, o: Outcome): Recorded {
    return this.session().record({
      unit,
      decision,
      startedAt,
      result: { status: o.status, rows: o.rows, bytes: o.bytes, durationMs: Date.now() - startedAt, ...(o.error ? { error: o.error } : {}) },
      ...(o.params ? { params: o.params } : {}),
      ...(o.sample ? { sample: o.sample } : {}),
    });
  }

  /** Every statement of a refused command is recorded as refused (none of them ran). */
  refused(j: Judgement, startedAt: number, text: string, params?: (string | null)[]): Recorded {
    const d = j.deny as Decision;
    return all(
      j.units.map((unit, i) =>
        this.session().record({
          unit,
          decision: i === j.denyIndex ? d : { action: 'deny', rule: d.rule },
          startedAt,
          result: { status: DENIED_SQLSTATE, error: i === j.denyIndex ? text : `not executed: ${text}` },
          ...(params ? { params } : {}),
        }),
      ),
    );
  }

  /** Statements of a multi-statement query after one that failed never ran: MySQL stops at the first error. */
  skipped(units: readonly Unit[], decisions: readonly Decision[], from: number, startedAt: number): Recorded {
    const recs: Recorded[] = [];
    for (let i = from; i < units.length; i++) {
      recs.push(
        this.session().record({
          unit: units[i],
          decision: decisions[i],
          startedAt,
          result: { status: 'skipped', error: 'not executed: an earlier statement of the same query failed' },
        }),
      );
    }
    return all(recs);
  }

  /** Send `reply` once its event is recorded as the audit promises; an error instead when it could not be written. */
  release(recorded: Recorded, reply: () => Buffer, send: (b: Buffer) => void, seq: () => number): Promise<void> | void {
    const failed = () => encode(errPayload(1105, 'HY000', 'gatehouse: audit log unavailable; result withheld'), seq());
    if (!(recorded instanceof Promise)) return send(recorded.ok ? reply() : failed());
    return recorded.then((r) => send(r.ok ? reply() : failed()));
  }
}

export function all(recs: Recorded[]): Recorded {
  if (recs.length === 0) return OK;
  if (recs.length === 1) return recs[0];
  if (!recs.some((r) => r instanceof Promise)) return (recs as Result<void>[]).find((r) => !r.ok) ?? OK;
  return Promise.all(recs.map((r) => Promise.resolve(r))).then((rs) => rs.find((r) => !r.ok) ?? OK);
}
