/**
 * Upstream → caller: each backend message is attributed to the request it answers (the
 * conversation's `expected` FIFO), masked for a masked caller, and its statement recorded
 * before the statement's final reply goes out. A message that cannot be attributed — rows
 * nobody asked for, rows whose columns were not described for this very Execute, anything
 * out of place — closes the session instead of being relayed.
 */
import type { Session } from '@gatehouse/core';
import type { Catalog } from './catalog.js';
import type { Conversation, Expected, QueryExpected, ResultExpected } from './conversation.js';
import { DENIED_SQLSTATE } from './deny.js';
import type { Frame } from './framer.js';
import { maskErrorMessage, maskNotification, maskParameterStatus } from './message-mask.js';
import { commandRows, maskDataRow, readRowDescription, sampleRow, type ResultShape } from './result-shape.js';
import type { StatementAudit } from './statement-audit.js';
import { B, errorResponse, parseErrorFields } from './wire.js';

const SAMPLE_ROWS = 3;
const COPY_REFUSED = errorResponse({ code: DENIED_SQLSTATE, message: 'gatehouse: COPY TO STDOUT is refused while masking rules apply to you' });

/** Statement kinds after which the catalog may be out of date. */
const SCHEMA_KINDS = new Set(['create', 'alter', 'drop', 'comment', 'grant', 'revoke']);
/** Errors that say the schema changed under a cached plan or name. */
const SCHEMA_CHANGED = new Set(['0A000', '42P01', '42703', '42P07']);

/** What the server side needs from the relay. */
export interface ServerMessagesIo {
  toClient(bytes: Buffer): void;
  /** The upstream broke the protocol where we are: audited, FATAL error, closed. */
  upstreamViolation(message: string): void;
}

export class ServerMessages {
  private readonly masked: boolean;
  private readonly send: (b: Buffer) => void;

  constructor(
    private readonly conversation: Conversation,
    private readonly session: Session,
    private readonly audit: StatementAudit,
    private readonly catalog: Catalog | null,
    private readonly io: ServerMessagesIo,
  ) {
    this.masked = session.masker.active;
    this.send = (b) => io.toClient(b);
  }

  onFrame(f: Frame): Promise<void> | void {
    try {
      return this.dispatch(f);
    } catch (e) {
      if (!(e instanceof RangeError)) throw e;
      this.io.upstreamViolation(`malformed ${String.fromCharCode(f.type)} message from upstream: ${e.message}`);
    }
  }

  private dispatch(f: Frame): Promise<void> | void {
    const t = f.type;
    const m = this.session.masker;
    // Asynchronous messages may come at any time; each can carry a value.
    if (t === B.NoticeResponse) return this.send(this.masked ? maskErrorMessage(f.bytes, m).bytes : f.bytes);
    if (t === B.ParameterStatus) return this.send(this.masked ? maskParameterStatus(f.bytes, m) : f.bytes);
    if (t === B.NotificationResponse) return this.send(this.masked ? maskNotification(f.bytes, m) : f.bytes);
    const expected = this.conversation.expected;
    const e = expected[0];
    if (!e) {
      // Unsolicited: only an error (a FATAL before the server closes, an admin shutdown) is
      // expected. Rows or results nobody asked for mean we lost track: never pass them on.
      if (t === B.ErrorResponse) return this.send(this.errorOut(f.bytes).bytes);
      return this.io.upstreamViolation(`unsolicited ${String.fromCharCode(t)} message from upstream`);
    }
    switch (e.kind) {
      case 'query':
        return this.onQueryResponse(e, f);
      case 'execute':
      case 'function-call':
        return this.onResultMessage(e, f);
      case 'refused-query':
        if (t === B.ErrorResponse) return this.audit.release(e.recorded, f.bytes, this.send);
        if (t === B.ReadyForQuery) {
          expected.shift();
          this.send(f.bytes);
        }
        return; // anything else of the DO block is ours, not the caller's
      case 'refused-extended':
        if (t === B.ErrorResponse) {
          expected.shift();
          this.conversation.skipToSync();
          return this.audit.release(e.recorded, f.bytes, this.send);
        }
        if (t === B.CommandComplete) {
          // The DO block cannot complete; if it somehow did, the caller still gets the refusal.
          expected.shift();
          return this.audit.release(e.recorded, errorResponse({ code: DENIED_SQLSTATE, message: e.message }), this.send);
        }
        return; // ParseComplete / BindComplete of the injected statement
      case 'parse':
        if (t === B.ErrorResponse) {
          if (e.previous) this.conversation.statements.set(e.name, e.previous);
          else this.conversation.statements.delete(e.name);
        }
        return this.simpleResponse(f, B.ParseComplete);
      case 'bind':
        if (t === B.ErrorResponse) {
          if (e.previous) this.conversation.portals.set(e.name, e.previous);
          else this.conversation.portals.delete(e.name);
        }
        return this.simpleResponse(f, B.BindComplete);
      case 'close':
        return this.simpleResponse(f, B.CloseComplete);
      case 'describe':
        return this.onDescribeResponse(e, f);
      case 'sync':
        if (t !== B.ReadyForQuery) return this.io.upstreamViolation(`unexpected ${String.fromCharCode(t)} message before ReadyForQuery`);
        expected.shift();
        this.send(f.bytes);
        return;
    }
  }

  private onDescribeResponse(e: Extract<Expected, { kind: 'describe' }>, f: Frame): Promise<void> | void {
    const t = f.type;
    if (t === B.ParameterDescription) {
      if (!e.internal) this.send(f.bytes);
      return;
    }
    if (t === B.RowDescription || t === B.NoData) {
      const shape = t === B.NoData ? null : this.readShape(f.bytes);
      if (shape instanceof Promise) return shape.then((s) => this.described(e, f, s));
      this.described(e, f, shape);
      return;
    }
    return this.simpleResponse(f, -1);
  }

  private described(e: Extract<Expected, { kind: 'describe' }>, f: Frame, shape: ResultShape | null): void {
    if (e.target) e.target.shape = shape;
    if (e.portal) e.portal.shape = shape;
    this.conversation.expected.shift();
    if (!e.internal) this.send(f.bytes);
  }

  /**
   * Columns of a RowDescription, traced to their origin. A table OID the catalog does not
   * know (created since it was read) waits for one reload before the rows are planned.
   */
  private readShape(msg: Buffer): ResultShape | Promise<ResultShape> {
    const catalog = this.masked ? this.catalog : null;
    const masker = this.session.masker;
    const shape = readRowDescription(msg, masker, catalog);
    if (!shape.unresolved || !catalog) return shape;
    const reload = catalog.refreshForUnknown();
    if (!reload) return shape;
    return reload.then(
      () => readRowDescription(msg, masker, catalog),
      () => shape, // traced by output name; restricted SQL refuses what it cannot follow
    );
  }

  /** ParseComplete/BindComplete/CloseComplete (`expected`) or an ErrorResponse (then skip to Sync). */
  private simpleResponse(f: Frame, expectedType: number): void {
    const c = this.conversation;
    if (f.type === B.ErrorResponse) {
      c.expected.shift();
      c.skipToSync();
      this.send(this.errorOut(f.bytes).bytes);
      return;
    }
    if (f.type !== expectedType) return this.io.upstreamViolation(`unexpected ${String.fromCharCode(f.type)} message`);
    c.expected.shift();
    this.send(f.bytes);
  }

  private onQueryResponse(e: QueryExpected, f: Frame): Promise<void> | void {
    const t = f.type;
    if (t === B.ReadyForQuery) {
      this.conversation.expected.shift();
      const skipped = this.audit.skipped(e);
      return skipped ? this.audit.release(skipped, f.bytes, this.send) : this.send(f.bytes);
    }
    if (t === B.EmptyQueryResponse) return this.send(f.bytes);
    return this.onResultMessage(e, f);
  }

  /** Rows, copy data and the completion of one statement (simple query, Execute or FunctionCall). */
  private onResultMessage(e: ResultExpected, f: Frame): Promise<void> | void {
    const t = f.type;
    const bytes = f.bytes;
    switch (t) {
      case B.DataRow:
        return this.onRow(e, bytes);
      case B.RowDescription: {
        if (e.kind !== 'query') return this.io.upstreamViolation('RowDescription outside a simple query');
        const shape = this.readShape(bytes);
        const go = (s: ResultShape) => {
          e.shape = s;
          e.sample = null;
          this.send(bytes);
        };
        if (shape instanceof Promise) return shape.then(go);
        return go(shape);
      }
      case B.CopyData:
      case B.CopyDone:
        if (!e.copyOut) return this.io.upstreamViolation('copy data outside COPY TO');
        if (!e.copyBlocked) {
          e.bytes += bytes.length;
          this.send(bytes);
        }
        return;
      case B.CopyOutResponse:
      case B.CopyBothResponse:
        e.copyOut = true;
        if (this.masked || t === B.CopyBothResponse) {
          // Copy rows carry no column names, so masking rules cannot be applied: refuse.
          e.copyBlocked = true;
          return this.send(COPY_REFUSED);
        }
        return this.send(bytes);
      case B.CopyInResponse:
        return this.send(bytes);
      case B.CommandComplete:
      case B.PortalSuspended:
      case B.FunctionCallResponse:
        return this.onCompletion(e, t, bytes);
      case B.ErrorResponse: {
        const err = this.errorOut(bytes);
        if (SCHEMA_CHANGED.has(err.code)) this.catalog?.invalidate();
        const recorded = this.audit.result(e, { status: err.code, error: `${err.code}: ${err.message}` });
        if (e.kind === 'query') e.failed = true;
        this.completeStatement(e);
        if (e.kind === 'execute') this.conversation.skipToSync();
        return this.audit.release(recorded, err.bytes, this.send);
      }
      case B.EmptyQueryResponse:
        if (e.kind === 'execute') this.conversation.expected.shift();
        return this.send(bytes);
      case B.ReadyForQuery:
        if (e.kind !== 'function-call') return this.io.upstreamViolation('ReadyForQuery before the result completed');
        // FunctionCall ends with ReadyForQuery.
        this.conversation.expected.shift();
        return this.send(bytes);
      default:
        return this.io.upstreamViolation(`unexpected ${String.fromCharCode(t)} message in a result`);
    }
  }

  private onRow(e: ResultExpected, bytes: Buffer): void {
    const shape = e.kind === 'execute' && e.shapeFromPortal ? e.portal.shape : e.shape;
    if (!shape) {
      if (this.masked) return this.io.upstreamViolation('a row arrived whose columns were not described');
      e.bytes += bytes.length;
      return this.send(bytes);
    }
    if (this.masked && bytes.readInt16BE(5) !== shape.names.length) return this.io.upstreamViolation('a row does not match its description');
    const out = shape.plan ? maskDataRow(bytes, shape) : bytes;
    e.bytes += out.length;
    if (e.sample === null || e.sample.length < SAMPLE_ROWS) (e.sample ??= []).push(sampleRow(out, shape));
    this.send(out);
  }

  private onCompletion(e: ResultExpected, t: number, bytes: Buffer): Promise<void> | void {
    const { tag, rows } = t === B.CommandComplete ? commandRows(bytes) : { tag: t === B.PortalSuspended ? 'suspended' : 'function', rows: undefined };
    if (t === B.CommandComplete && this.catalog && changesSchema(this.audit.unitOf(e)?.match.statement)) this.catalog.invalidate();
    if (e.copyBlocked) {
      // The refusal went out already; the completion is dropped.
      void this.audit.result(e, { status: DENIED_SQLSTATE, rows: 0, error: 'COPY TO STDOUT refused: masking applies' }, { action: 'deny', rule: 'masking' });
      this.completeStatement(e);
      return;
    }
    const recorded = this.audit.result(e, { status: tag, rows });
    this.completeStatement(e);
    return this.audit.release(recorded, bytes, this.send);
  }

  /** An ErrorResponse as this caller may see it (masked), with its SQLSTATE and message for the audit. */
  private errorOut(bytes: Buffer): { bytes: Buffer; code: string; message: string } {
    if (this.masked) return maskErrorMessage(bytes, this.session.masker);
    const e = parseErrorFields(bytes);
    return { bytes, code: e.code, message: e.message };
  }

  /** Statement done: advance a simple query to its next statement, or retire an Execute. */
  private completeStatement(e: ResultExpected): void {
    if (e.kind === 'query') {
      e.index++;
      e.startedAt = Date.now();
      e.shape = undefined;
      e.bytes = 0;
      e.sample = null;
      e.copyOut = false;
      e.copyBlocked = false;
    } else if (e.kind === 'execute') this.conversation.expected.shift();
  }
}

function changesSchema(kinds: string | string[] | undefined): boolean {
  if (!Array.isArray(kinds)) return false;
  for (const k of kinds) if (SCHEMA_KINDS.has(k)) return true;
  return false;
}
