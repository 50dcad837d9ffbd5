/**
 * The state both directions of one PostgreSQL conversation share: what the caller has
 * prepared and bound, and the FIFO of responses we expect from the upstream. PostgreSQL
 * answers a pipeline strictly in order, and after an error in the extended protocol it
 * skips every message up to Sync; `expected` mirrors exactly that, so each upstream message
 * is attributed to the request it answers — or, when it cannot be, the session is closed.
 */
import type { Decision, Judgement, Recorded, Unit } from '@gatehouse/core';
import type { ResultShape } from './result-shape.js';

export interface StatementState {
  text: string;
  units: readonly Unit[];
  /** The decision the audit records; `review` while `pending` waits for a Bind. */
  decision: Decision;
  /** One decision per unit, some `review`: settled at each Bind with its parameters. */
  pending?: readonly Decision[];
}

export interface PortalState {
  statement: StatementState;
  /** The Bind message (parameters are decoded from it only for the audit event). */
  bind: Buffer | null;
  /** From the last Describe answered for this portal. undefined: none; null: returns no rows. */
  shape: ResultShape | null | undefined;
  /**
   * `executions` when a Describe of this portal was last sent; -1 never. A shape is only
   * trusted for an Execute that directly follows its Describe (nothing executed between),
   * because a statement run in between can close the portal and declare another cursor of
   * the same name with another shape.
   */
  describedAt: number;
}

/** What one statement's result accumulates until its completion. */
export interface ResultProgress {
  startedAt: number;
  /** The result's columns (RowDescription of a simple query, or the Describe for this Execute). */
  shape: ResultShape | null | undefined;
  bytes: number;
  /** First rows (masked), for the session timeline. */
  sample: (string | null)[][] | null;
  /** CopyOutResponse seen: CopyData may follow. */
  copyOut: boolean;
  /** COPY TO STDOUT refused for a masked caller: drop the data, answer with an error. */
  copyBlocked: boolean;
}

export type QueryExpected = { kind: 'query'; judgement: Judgement; index: number; failed: boolean } & ResultProgress;
export type ExecuteExpected = { kind: 'execute'; portal: PortalState; shapeFromPortal: boolean } & ResultProgress;
export type FunctionCallExpected = { kind: 'function-call'; unit: Unit; decision: Decision } & ResultProgress;
/** A request that produces a result: rows, copy data, a completion. */
export type ResultExpected = QueryExpected | ExecuteExpected | FunctionCallExpected;

export type Expected =
  | ResultExpected
  /** Our refusal of a Query (simple protocol) or of an extended-protocol message. */
  | { kind: 'refused-query' | 'refused-extended'; recorded: Recorded; message: string }
  | { kind: 'parse'; name: string; previous: StatementState | undefined }
  | { kind: 'bind'; name: string; previous: PortalState | undefined }
  | { kind: 'close' | 'sync' }
  /** `target`: an Execute waiting for this shape (our own Describe); else the portal keeps it. */
  | { kind: 'describe'; portal: PortalState | null; internal: boolean; target: ExecuteExpected | null };

export function newResult(startedAt: number): ResultProgress {
  return { startedAt, shape: undefined, bytes: 0, sample: null, copyOut: false, copyBlocked: false };
}

export class Conversation {
  /** Responses expected from the upstream, in order. */
  readonly expected: Expected[] = [];
  readonly statements = new Map<string, StatementState>();
  readonly portals = new Map<string, PortalState>();
  /** We refused an extended-protocol message: drop the caller's messages until Sync. */
  discarding = false;
  /** The upstream reported an error and no Sync is queued: it ignores everything until one. */
  upstreamSkipping = false;
  /** Executions sent so far (Query, Execute, FunctionCall): dates each portal's Describe. */
  executions = 0;

  /** Expect a response to a forwarded message (none while the upstream skips to Sync, except Sync's). */
  expect(e: Expected): void {
    if (!this.upstreamSkipping || e.kind === 'sync') this.expected.push(e);
  }

  /**
   * After an extended-protocol error PostgreSQL answers nothing until Sync: drop what we
   * expected for the messages it will skip (they never ran, so nothing is recorded).
   */
  skipToSync(): void {
    const q = this.expected;
    while (q.length > 0 && q[0].kind !== 'sync') q.shift();
    if (q.length === 0) this.upstreamSkipping = true;
  }
}
