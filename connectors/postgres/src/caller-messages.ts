/**
 * Caller → upstream: each frontend message is decoded (only the fields policy, masking and
 * audit need), judged, and forwarded as the received bytes — or refused — while the
 * responses it will produce are put on the conversation's `expected` FIFO.
 */
import { createHash } from 'node:crypto';
import { denialMessage, type Decision, type HoldNotice, type Judgement, type Recorded, type Session, type Unit } from '@gatehouse/core';
import type { Catalog } from './catalog.js';
import { Conversation, newResult, type ExecuteExpected, type PortalState, type StatementState } from './conversation.js';
import { denyExtended, denyQuery } from './deny.js';
import type { Frame } from './framer.js';
import { readBind, readExecute, readFunctionCall, readParse, readQuery, readTarget, type BindMsg } from './frontend.js';
import type { CatalogRestrictedView } from './restricted-view.js';
import type { StatementAudit } from './statement-audit.js';
import { opaqueUnit, parseErrorJudgement, restrictedVeto, unitsFor } from './units.js';
import { describePortalMessage, F } from './wire.js';

export interface CallerMessagesOptions {
  database: string;
  onParseError: 'deny' | 'allow';
  /** Most named statements / portals a session may hold. */
  maxNamed: number;
  catalog: Catalog | null;
  /** Restricted SQL for this caller (masked, `masking_mode: restricted`); null otherwise. */
  restricted: CatalogRestrictedView | null;
}

/** What the caller side needs from the relay. */
export interface CallerMessagesIo {
  toUpstream(bytes: Buffer): void;
  /** A frame we refuse outright: audited, FATAL error, connection closed. */
  protocolError(sqlstate: string, message: string): void;
  /** The caller sent Terminate. */
  terminate(): void;
  /** A NoticeResponse to the caller now, outside the reply stream (a unit held for approval). */
  notice(text: string): void;
}

const RESTRICTED_CATALOG_DOWN: Decision = { action: 'deny', rule: 'masking-restricted', reason: 'the upstream catalog cannot be read, so masking cannot be enforced' };

export class CallerMessages {
  private readonly masked: boolean;
  private readonly veto: ((unit: Unit) => Decision | null) | null;
  /** A unit held for approval: the caller reads why it waits; later notices keep the connection alive. */
  private readonly hold: { onHold: (n: HoldNotice) => void };
  /** At Parse: a reviewed statement is settled at its Bind, with its parameters (see onBind). */
  private readonly deferred: { onHold: (n: HoldNotice) => void; deferReview: true };

  constructor(
    private readonly conversation: Conversation,
    private readonly session: Session,
    private readonly audit: StatementAudit,
    private readonly options: CallerMessagesOptions,
    private readonly io: CallerMessagesIo,
  ) {
    this.masked = session.masker.active;
    this.veto = options.restricted ? restrictedVeto(options.restricted) : null;
    this.hold = {
      onHold: (n) =>
        io.notice(
          n.first
            ? `gatehouse: waiting for approval of request ${n.id} (up to ${Math.ceil(n.remainingMs / 1000)}s)`
            : `gatehouse: still waiting for approval of request ${n.id} (${Math.ceil(n.remainingMs / 1000)}s left)`,
        ),
    };
    this.deferred = { ...this.hold, deferReview: true };
  }

  /** Handle one frontend message; a promise means "wait before reading the next". */
  onFrame(f: Frame): Promise<void> | void {
    const t = f.type;
    if (this.conversation.discarding && t !== F.Sync && t !== F.Terminate) return;
    try {
      switch (t) {
        case F.Query:
          return this.onQuery(f.bytes);
        case F.Parse:
          return this.onParse(f.bytes);
        case F.Bind:
          return this.onBind(f.bytes);
        case F.Describe:
          return this.onDescribe(f.bytes);
        case F.Execute:
          return this.onExecute(f.bytes);
        case F.Close:
          return this.onClose(f.bytes);
        case F.Sync:
          this.conversation.discarding = false;
          this.conversation.upstreamSkipping = false;
          this.forward(f.bytes);
          this.conversation.expect({ kind: 'sync' });
          return;
        case F.Flush:
        case F.CopyData:
        case F.CopyDone:
        case F.CopyFail:
          this.forward(f.bytes);
          return;
        case F.FunctionCall:
          return this.onFunctionCall(f.bytes);
        case F.Terminate:
          this.forward(f.bytes);
          this.io.terminate();
          return;
        default:
          this.io.protocolError('08P01', `unexpected frontend message type 0x${t.toString(16)}`);
          return;
      }
    } catch (e) {
      if (e instanceof RangeError) {
        this.io.protocolError('08P01', `malformed ${String.fromCharCode(t)} message: ${e.message}`);
        return;
      }
      throw e;
    }
  }

  private forward(bytes: Buffer): void {
    this.io.toUpstream(bytes);
  }

  /**
   * The Session's judgement plus, for a restricted caller, restricted SQL — which needs a
   * current catalog: after DDL (or at its TTL) the decision waits for the reload. A catalog
   * that cannot be read refuses the statement (fail closed).
   */
  private judge(units: readonly Unit[], parseError: string | null, deferReview = false): Judgement | Promise<Judgement> {
    if (parseError !== null) return parseErrorJudgement(units);
    const catalog = this.options.catalog;
    const options = deferReview ? this.deferred : this.hold;
    if (!this.veto || !catalog || !catalog.needsLoad) return this.session.judge(units, this.veto, options);
    return catalog.ready().then(
      () => this.session.judge(units, this.veto, options),
      () => ({ units, decisions: units.map(() => RESTRICTED_CATALOG_DOWN), deny: RESTRICTED_CATALOG_DOWN, denyIndex: 0 }),
    );
  }

  private onQuery(msg: Buffer): Promise<void> | void {
    const startedAt = Date.now();
    const { units, parseError } = unitsFor(readQuery(msg), this.options.database, this.options.onParseError);
    const j = this.judge(units, parseError);
    if (j instanceof Promise) return j.then((judged) => this.queryJudged(msg, judged, startedAt));
    this.queryJudged(msg, j, startedAt);
  }

  private queryJudged(msg: Buffer, j: Judgement, startedAt: number): void {
    if (j.deny) {
      const text = denialMessage(j.deny);
      this.refuseQuery(this.audit.refused(j, startedAt, text), text);
      return;
    }
    this.conversation.executions++;
    this.forward(msg);
    this.conversation.expect({ kind: 'query', judgement: j, index: 0, failed: false, ...newResult(startedAt) });
  }

  /**
   * Answer a refused Query / FunctionCall through the upstream (see deny.ts). While the
   * upstream skips to Sync it would ignore the refusal too, so nothing is sent or expected.
   */
  private refuseQuery(recorded: Recorded, text: string): void {
    if (this.conversation.upstreamSkipping) return;
    this.io.toUpstream(denyQuery(text));
    this.conversation.expected.push({ kind: 'refused-query', recorded, message: text });
  }

  private onParse(msg: Buffer): Promise<void> | void {
    const startedAt = Date.now();
    const { name, sql } = readParse(msg);
    const c = this.conversation;
    if (name !== '' && !c.statements.has(name) && c.statements.size >= this.options.maxNamed) {
      this.io.protocolError('54000', `too many prepared statements (limit ${this.options.maxNamed})`);
      return;
    }
    const { units, parseError } = unitsFor(sql, this.options.database, this.options.onParseError);
    // Parsing runs nothing: a statement that needs review is reviewed at each Bind, with the
    // values it will run with (an approval covers text and parameters, not the text alone).
    const j = this.judge(units, parseError, true);
    if (j instanceof Promise) return j.then((judged) => this.parseJudged(msg, name, sql, judged, startedAt));
    this.parseJudged(msg, name, sql, j, startedAt);
  }

  private parseJudged(msg: Buffer, name: string, sql: string, j: Judgement, startedAt: number): void {
    const c = this.conversation;
    if (c.upstreamSkipping && !j.deny) {
      // PostgreSQL will ignore this Parse (an earlier error, no Sync yet): so do we.
      this.forward(msg);
      return;
    }
    const previous = c.statements.get(name);
    if (j.deny) {
      // Remember the refusal: a later Bind of this name is refused again (it never existed upstream).
      c.statements.set(name, { text: sql, units: j.units, decision: j.deny });
      this.refuseExtended(j, startedAt);
      return;
    }
    const review = j.decisions.find((d) => d.action === 'review');
    c.statements.set(
      name,
      review ? { text: sql, units: j.units, decision: review, pending: j.decisions } : { text: sql, units: j.units, decision: j.decisions[0] ?? { action: 'allow' } },
    );
    this.forward(msg);
    c.expect({ kind: 'parse', name, previous });
  }

  /** Refuse an extended-protocol message: the rest of the pipeline is discarded up to Sync. */
  private refuseExtended(j: Judgement, startedAt: number): void {
    const c = this.conversation;
    const text = denialMessage(j.deny as Decision);
    const recorded = this.audit.refused(j, startedAt, text);
    if (!c.upstreamSkipping) {
      this.io.toUpstream(denyExtended(text));
      c.expected.push({ kind: 'refused-extended', recorded, message: text });
    }
    c.discarding = true;
  }

  private onBind(msg: Buffer): Promise<void> | void {
    const b = readBind(msg);
    const statement = this.conversation.statements.get(b.statement);
    if (statement?.pending) {
      const startedAt = Date.now();
      const paramsHash = createHash('sha256').update(msg.subarray(b.paramsAt)).digest('hex');
      const pending = statement.pending;
      return this.session.settleReviews(statement.units, pending, { ...this.hold, paramsHash }).then((j) => {
        if (j.deny) return this.refuseExtended(j, startedAt);
        // This Bind's portal runs with the approval; the statement is reviewed again at its next Bind.
        const approved = j.decisions[pending.findIndex((d) => d.action === 'review')];
        this.bindJudged(b, msg, { text: statement.text, units: statement.units, decision: approved });
      });
    }
    if (statement && statement.decision.action !== 'allow') {
      const d = statement.decision;
      this.refuseExtended({ units: statement.units, decisions: statement.units.map(() => d), deny: d, denyIndex: 0 }, Date.now());
      return;
    }
    this.bindJudged(b, msg, statement);
  }

  private bindJudged(b: BindMsg, msg: Buffer, judged: StatementState | undefined): void {
    const c = this.conversation;
    let statement = judged;
    // A statement PREPAREd in SQL shares the namespace; its policy check happened at PREPARE.
    statement ??= { text: `EXECUTE ${b.statement}`, units: [opaqueUnit(`EXECUTE ${b.statement}`, 'execute')], decision: { action: 'allow' } };
    if (b.portal !== '' && !c.portals.has(b.portal) && c.portals.size >= this.options.maxNamed) {
      this.io.protocolError('54000', `too many portals (limit ${this.options.maxNamed})`);
      return;
    }
    const previous = c.portals.get(b.portal);
    c.portals.set(b.portal, { statement, bind: b.raw, shape: undefined, describedAt: -1 });
    this.forward(msg);
    c.expect({ kind: 'bind', name: b.portal, previous });
  }

  private onDescribe(msg: Buffer): void {
    const d = readTarget(msg);
    let portal: PortalState | null = null;
    if (d.kind === 'P') {
      portal = this.portalFor(d.name);
      portal.describedAt = this.conversation.executions;
    }
    this.forward(msg);
    this.conversation.expect({ kind: 'describe', portal, internal: false, target: null });
  }

  private onExecute(msg: Buffer): void {
    const c = this.conversation;
    const { portal: name } = readExecute(msg);
    const portal = this.portalFor(name);
    const e: ExecuteExpected = { kind: 'execute', portal, shapeFromPortal: true, ...newResult(Date.now()) };
    if (this.masked && portal.describedAt !== c.executions && !c.upstreamSkipping) {
      // Masking needs this Execute's columns and no Describe answers for it: ask ourselves.
      e.shapeFromPortal = false;
      this.io.toUpstream(describePortalMessage(name));
      c.expected.push({ kind: 'describe', portal: null, internal: true, target: e });
    }
    c.executions++;
    this.forward(msg);
    c.expect(e);
  }

  /**
   * A portal we did not see bound is a SQL cursor (DECLARE): its statement was judged then.
   * Its state is not kept: its shape is asked before each Execute.
   */
  private portalFor(name: string): PortalState {
    const p = this.conversation.portals.get(name);
    if (p) return p;
    const text = `FETCH FROM ${name === '' ? 'unnamed portal' : JSON.stringify(name)}`;
    return { statement: { text, units: [opaqueUnit(text, 'fetch')], decision: { action: 'allow' } }, bind: null, shape: undefined, describedAt: -1 };
  }

  private onClose(msg: Buffer): void {
    const t = readTarget(msg);
    if (t.kind === 'S') this.conversation.statements.delete(t.name);
    else this.conversation.portals.delete(t.name);
    this.forward(msg);
    this.conversation.expect({ kind: 'close' });
  }

  private onFunctionCall(msg: Buffer): Promise<void> | void {
    const startedAt = Date.now();
    const { oid } = readFunctionCall(msg);
    const unit = opaqueUnit(`-- FunctionCall oid ${oid}`, 'function_call');
    // A fast-path call cannot be classified: it is refused unless parse errors are allowed.
    const j = this.judge([unit], this.options.onParseError === 'allow' ? null : 'function call');
    const go = (judged: Judgement) => {
      if (judged.deny) {
        const text = denialMessage(judged.deny);
        this.refuseQuery(this.audit.refused(judged, startedAt, text), text);
        return;
      }
      this.conversation.executions++;
      this.forward(msg);
      this.conversation.expect({ kind: 'function-call', unit, decision: judged.decisions[0], ...newResult(startedAt) });
    };
    if (j instanceof Promise) return j.then(go);
    go(j);
  }
}
