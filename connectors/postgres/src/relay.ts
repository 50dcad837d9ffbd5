/**
 * One caller's connection after login: client ⇄ upstream message relay with per-statement
 * policy, result masking and audit.
 *
 * Frontend messages are decoded (only the fields we need) and forwarded as the received
 * bytes. Backend messages are framed and forwarded as views of the received chunks; only
 * DataRows of masked columns are rebuilt. Responses are matched to requests through a FIFO
 * of `Pending` entries, mirroring how PostgreSQL answers a pipeline in order (and skips to
 * Sync after an error in the extended protocol).
 *
 * Callback-driven on purpose: a promise exists only where we must wait (a review, or the
 * audit append before a statement's CommandComplete).
 */
import type { Socket } from 'node:net';
import type { Decision, Logger, Result, Session, Unit } from '@gatehouse/core';
import type { Catalog } from './catalog.js';
import { denialMessage, denyExtended, denyQuery, DENIED_SQLSTATE } from './deny.js';
import { MessageFramer, type Frame } from './framer.js';
import { bindParams, readBind, readExecute, readFunctionCall, readParse, readQuery, readTarget } from './frontend.js';
import { maskErrorMessage, maskNotification, maskParameterStatus } from './message-mask.js';
import { CatalogRestrictedView } from './restricted-view.js';
import { commandRows, maskDataRow, readRowDescription, sampleRow, type ResultShape } from './result-shape.js';
import { judge, opaqueUnit, unitsFor, type Judged } from './units.js';
import { B, describePortalMessage, errorResponse, F, parseErrorFields } from './wire.js';

export interface RelayOptions {
  database: string;
  onParseError: 'deny' | 'allow';
  maxMessageBytes: number;
  maxResultMessageBytes: number;
  /** Most named statements / portals a session may hold. */
  maxNamed: number;
  /**
   * The upstream's catalog: result columns are traced to `schema.table.column` through it,
   * and restricted SQL asks it about relations and functions. Null: trace by output name only.
   */
  catalog: Catalog | null;
  /** `restricted`: a masked caller's statements whose output masking cannot follow are refused. */
  maskingMode: 'restricted' | 'permissive';
  log: Logger;
  /** Called once when both sockets are closed and the session has ended. */
  onClose: () => void;
}

interface StmtState {
  text: string;
  units: readonly Unit[];
  decision: Decision;
}

interface PortalState {
  stmt: StmtState;
  /** The Bind message (parameters are decoded from it only for the audit event). */
  bind: Buffer | null;
  /** From the last Describe answered for this portal. undefined: none; null: returns no rows. */
  shape: ResultShape | null | undefined;
  /**
   * `execSerial` when a Describe of this portal was last sent; -1 never. A shape is only
   * trusted for an Execute that directly follows its Describe (nothing executed between),
   * because a statement run in between can close the portal and declare another cursor of
   * the same name with another shape.
   */
  describedAt: number;
}

/** What a statement's result accumulates until its completion. */
interface ResultAcc {
  startedAt: number;
  /** The result's columns (RowDescription of a simple query, or the Describe for this Execute). */
  shape: ResultShape | null | undefined;
  bytes: number;
  sample: (string | null)[][] | null;
  /** CopyOutResponse seen: CopyData may follow. */
  copyOut: boolean;
  /** COPY TO STDOUT refused for a masked caller: drop the data, answer with an error. */
  copyBlocked: boolean;
}

type ExecutePending = { k: 'execute'; portal: PortalState; fromPortal: boolean } & ResultAcc;
type QueryPending = { k: 'query'; judged: Judged; idx: number; failed: boolean } & ResultAcc;
type FuncPending = { k: 'func'; unit: Unit; decision: Decision } & ResultAcc;
type ResultPending = QueryPending | ExecutePending | FuncPending;

type Pending =
  | ResultPending
  | { k: 'denyq' | 'deny'; rec: Promise<Result<void>>; message: string }
  | { k: 'parse'; name: string; prev: StmtState | undefined }
  | { k: 'bind'; name: string; prev: PortalState | undefined }
  | { k: 'close' | 'sync' }
  /** `target`: an Execute waiting for this shape (internal Describe); else the portal keeps it. */
  | { k: 'describe'; portal: PortalState | null; internal: boolean; target: ExecutePending | null };

const acc = (startedAt: number): ResultAcc => ({ startedAt, shape: undefined, bytes: 0, sample: null, copyOut: false, copyBlocked: false });

const SAMPLE_ROWS = 3;
const AUDIT_FAILED = { code: '58000', message: 'gatehouse: audit log unavailable; result withheld' };

export class Relay {
  private readonly cf: MessageFramer;
  private readonly uf: MessageFramer;
  private readonly queue: Pending[] = [];
  private readonly statements = new Map<string, StmtState>();
  private readonly portals = new Map<string, PortalState>();
  private toClient: Buffer[] = [];
  private toUpstream: Buffer[] = [];
  /** Waiting on a review / audit append: stop reading that side. */
  private clientBusy = false;
  private upstreamBusy = false;
  /** The peer's send buffer is full: stop reading the other side. */
  private clientFull = false;
  private upstreamFull = false;
  /** We refused an extended-protocol message: drop the caller's messages until Sync. */
  private discarding = false;
  /** Upstream reported an error and no Sync is queued: it ignores everything until one. */
  private upstreamSkipping = false;
  private closed = false;
  private readonly strict: boolean;
  /** Masking applies to this caller: every value-carrying message is masked, shapes are checked. */
  private readonly masked: boolean;
  /** Restricted SQL for this caller (masked, `masking_mode: restricted`); null otherwise. */
  private readonly restricted: CatalogRestrictedView | null;
  /** Executions sent so far (Query, Execute, FunctionCall): dates each portal's Describe. */
  private execSerial = 0;

  constructor(
    private readonly client: Socket,
    private readonly upstream: Socket,
    private readonly session: Session,
    private readonly o: RelayOptions,
  ) {
    this.cf = new MessageFramer(o.maxMessageBytes);
    this.uf = new MessageFramer(o.maxResultMessageBytes);
    this.strict = session.auditDurability !== 'batched';
    this.masked = session.masker.active;
    this.restricted = this.masked && o.maskingMode === 'restricted' && o.catalog ? new CatalogRestrictedView(session.masker, o.catalog) : null;
  }

  start(): void {
    const { client, upstream } = this;
    client.on('data', (c: Buffer) => {
      this.cf.push(c);
      this.pumpClient();
    });
    upstream.on('data', (c: Buffer) => {
      this.uf.push(c);
      this.pumpUpstream();
    });
    client.on('drain', () => {
      this.clientFull = false;
      this.flow();
    });
    upstream.on('drain', () => {
      this.upstreamFull = false;
      this.flow();
    });
    client.on('close', () => this.close('client closed'));
    upstream.on('close', () => this.close('upstream closed'));
    client.on('error', (e) => this.o.log.debug({ err: e.message }, 'client socket error'));
    upstream.on('error', (e) => this.o.log.warn({ err: e.message }, 'upstream socket error'));
    client.resume();
    upstream.resume();
  }

  /**
   * Close both sides and end the session (idempotent). `graceful`: let the last bytes we
   * wrote (a FATAL error) reach the caller before the socket goes away.
   */
  close(reason: string, graceful = false): void {
    if (this.closed) return;
    this.closed = true;
    if (graceful) {
      this.client.end();
      setTimeout(() => this.client.destroy(), 1000).unref();
    } else this.client.destroy();
    this.upstream.destroy();
    void this.session.end(reason).finally(this.o.onClose);
  }

  // ---- flow control -------------------------------------------------------------------

  private flow(): void {
    if (this.closed) return;
    const readClient = !this.clientBusy && !this.upstreamFull;
    const readUpstream = !this.upstreamBusy && !this.clientFull;
    if (readClient) {
      if (this.client.isPaused()) this.client.resume();
      this.pumpClient();
    } else this.client.pause();
    if (readUpstream) {
      if (this.upstream.isPaused()) this.upstream.resume();
      this.pumpUpstream();
    } else this.upstream.pause();
  }

  private flushClient(): void {
    if (this.toClient.length === 0 || this.closed) return;
    const out = this.toClient;
    this.toClient = [];
    if (!writeAll(this.client, out) && !this.clientFull) {
      this.clientFull = true;
      this.upstream.pause();
    }
  }

  private flushUpstream(): void {
    if (this.toUpstream.length === 0 || this.closed) return;
    const out = this.toUpstream;
    this.toUpstream = [];
    if (!writeAll(this.upstream, out) && !this.upstreamFull) {
      this.upstreamFull = true;
      this.client.pause();
    }
  }

  // ---- client → upstream --------------------------------------------------------------

  private pumpClient(): void {
    if (this.clientBusy || this.upstreamFull || this.closed) return;
    let f: Frame | null;
    while ((f = this.cf.next())) {
      const wait = this.onClientMessage(f);
      if (this.closed) return;
      if (wait) {
        this.clientBusy = true;
        this.client.pause();
        this.flushUpstream();
        this.flushClient();
        wait.then(
          () => {
            this.clientBusy = false;
            this.flushUpstream();
            this.flow();
          },
          (e: Error) => this.fatal('internal error', e),
        );
        return;
      }
    }
    if (this.cf.error) {
      const e = this.cf.error;
      const msg = e.code === 'too_large' ? `message of ${e.length} bytes exceeds max_message_bytes` : `invalid message length ${e.length}`;
      this.protocolError(e.code === 'too_large' ? '54000' : '08P01', msg);
      return;
    }
    this.flushUpstream();
    this.flushClient();
  }

  /** Handle one frontend message; a promise means "wait before reading the next". */
  private onClientMessage(f: Frame): Promise<void> | void {
    const t = f.type;
    if (this.discarding && t !== F.Sync && t !== F.Terminate) return;
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
          return this.onCloseMsg(f.bytes);
        case F.Sync:
          this.discarding = false;
          this.upstreamSkipping = false;
          this.forward(f.bytes, { k: 'sync' });
          return;
        case F.Flush:
        case F.CopyData:
        case F.CopyDone:
        case F.CopyFail:
          this.toUpstream.push(f.bytes);
          return;
        case F.FunctionCall:
          return this.onFunctionCall(f.bytes);
        case F.Terminate:
          this.toUpstream.push(f.bytes);
          this.flushUpstream();
          this.close('client terminated');
          return;
        default:
          this.protocolError('08P01', `unexpected frontend message type 0x${t.toString(16)}`);
          return;
      }
    } catch (e) {
      if (e instanceof RangeError) {
        this.protocolError('08P01', `malformed ${String.fromCharCode(t)} message: ${e.message}`);
        return;
      }
      throw e;
    }
  }

  /** Forward a message and expect its response (unless upstream is skipping to Sync). */
  private forward(bytes: Buffer, p: Pending | null): void {
    this.toUpstream.push(bytes);
    if (p && (!this.upstreamSkipping || p.k === 'sync')) this.queue.push(p);
  }

  private onQuery(msg: Buffer): Promise<void> | void {
    const startedAt = Date.now();
    const sql = readQuery(msg);
    const { units, parseError } = unitsFor(sql, this.o.database, this.o.onParseError);
    const j = this.judge(units, parseError);
    if (j instanceof Promise) return j.then((jj) => this.queryJudged(msg, jj, startedAt));
    this.queryJudged(msg, j, startedAt);
  }

  /**
   * The Session's decision plus, for a restricted caller, restricted SQL — which needs a
   * current catalog: after DDL (or at its TTL) the decision waits for the reload. A catalog
   * that cannot be read refuses the statement (fail closed).
   */
  private judge(units: readonly Unit[], parseError: string | null): Judged | Promise<Judged> {
    const catalog = this.o.catalog;
    if (!this.restricted || !catalog || !catalog.needsLoad) return judge(this.session, units, parseError, this.restricted);
    return catalog.ready().then(
      () => judge(this.session, units, parseError, this.restricted),
      () => {
        const d: Decision = { action: 'deny', rule: 'masking-restricted', reason: 'the upstream catalog cannot be read, so masking cannot be enforced' };
        return { units, decisions: units.map(() => d), deny: d, denyIndex: 0 };
      },
    );
  }

  private queryJudged(msg: Buffer, j: Judged, startedAt: number): void {
    if (j.deny) {
      const text = denialMessage(j.deny);
      const rec = this.recordDenied(j, startedAt, text);
      this.refuseQuery(rec, text);
      return;
    }
    this.execSerial++;
    this.forward(msg, { k: 'query', judged: j, idx: 0, failed: false, ...acc(startedAt) });
  }

  /**
   * Answer a refused Query / FunctionCall through the upstream (see deny.ts). While the
   * upstream skips to Sync it would ignore the refusal too, so nothing is sent or expected.
   */
  private refuseQuery(rec: Promise<Result<void>>, text: string): void {
    if (this.upstreamSkipping) return;
    this.toUpstream.push(denyQuery(text));
    this.queue.push({ k: 'denyq', rec, message: text });
  }

  /** Every statement of a refused message is audited as refused (none of them ran). */
  private recordDenied(j: Judged, startedAt: number, text: string): Promise<Result<void>> {
    const d = j.deny as Decision;
    const recs = j.units.map((unit, i) =>
      this.session.record({
        unit,
        decision: i === j.denyIndex ? d : { action: 'deny', rule: d.rule },
        startedAt,
        result: { status: DENIED_SQLSTATE, error: i === j.denyIndex ? text : `not executed: ${text}` },
      }),
    );
    if (recs.length === 1) return recs[0];
    return Promise.all(recs).then((rs) => rs.find((r) => !r.ok) ?? rs[0] ?? { ok: true as const, value: undefined });
  }

  private onParse(msg: Buffer): Promise<void> | void {
    const startedAt = Date.now();
    const { name, sql } = readParse(msg);
    if (name !== '' && !this.statements.has(name) && this.statements.size >= this.o.maxNamed) {
      this.protocolError('54000', `too many prepared statements (limit ${this.o.maxNamed})`);
      return;
    }
    const { units, parseError } = unitsFor(sql, this.o.database, this.o.onParseError);
    const j = this.judge(units, parseError);
    if (j instanceof Promise) return j.then((jj) => this.parseJudged(msg, name, sql, jj, startedAt));
    this.parseJudged(msg, name, sql, j, startedAt);
  }

  private parseJudged(msg: Buffer, name: string, sql: string, j: Judged, startedAt: number): void {
    if (this.upstreamSkipping && !j.deny) {
      // PostgreSQL will ignore this Parse (an earlier error, no Sync yet): so do we.
      this.toUpstream.push(msg);
      return;
    }
    const prev = this.statements.get(name);
    if (j.deny) {
      // Remember the refusal: a later Bind of this name is refused again (it never existed upstream).
      this.statements.set(name, { text: sql, units: j.units, decision: j.deny });
      this.denyExtended(j, startedAt);
      return;
    }
    this.statements.set(name, { text: sql, units: j.units, decision: j.decisions[0] ?? { action: 'allow' } });
    this.forward(msg, { k: 'parse', name, prev });
  }

  private denyExtended(j: Judged, startedAt: number): void {
    const text = denialMessage(j.deny as Decision);
    const rec = this.recordDenied(j, startedAt, text);
    if (!this.upstreamSkipping) {
      this.toUpstream.push(denyExtended(text));
      this.queue.push({ k: 'deny', rec, message: text });
    }
    this.discarding = true;
  }

  private onBind(msg: Buffer): void {
    const b = readBind(msg);
    let stmt = this.statements.get(b.statement);
    if (stmt && stmt.decision.action !== 'allow') {
      this.denyExtended({ units: stmt.units, decisions: stmt.units.map(() => stmt!.decision), deny: stmt.decision, denyIndex: 0 }, Date.now());
      return;
    }
    // A statement PREPAREd in SQL shares the namespace; its policy check happened at PREPARE.
    stmt ??= { text: `EXECUTE ${b.statement}`, units: [opaqueUnit(`EXECUTE ${b.statement}`, 'execute')], decision: { action: 'allow' } };
    if (b.portal !== '' && !this.portals.has(b.portal) && this.portals.size >= this.o.maxNamed) {
      this.protocolError('54000', `too many portals (limit ${this.o.maxNamed})`);
      return;
    }
    const prev = this.portals.get(b.portal);
    this.portals.set(b.portal, { stmt, bind: b.raw, shape: undefined, describedAt: -1 });
    this.forward(msg, { k: 'bind', name: b.portal, prev });
  }

  private onDescribe(msg: Buffer): void {
    const d = readTarget(msg);
    let portal: PortalState | null = null;
    if (d.kind === 'P') {
      portal = this.portalFor(d.name);
      portal.describedAt = this.execSerial;
    }
    this.forward(msg, { k: 'describe', portal, internal: false, target: null });
  }

  private onExecute(msg: Buffer): void {
    const startedAt = Date.now();
    const { portal: name } = readExecute(msg);
    const portal = this.portalFor(name);
    const p: ExecutePending = { k: 'execute', portal, fromPortal: true, ...acc(startedAt) };
    if (this.masked && portal.describedAt !== this.execSerial && !this.upstreamSkipping) {
      // Masking needs this Execute's columns and no Describe answers for it: ask ourselves.
      p.fromPortal = false;
      this.toUpstream.push(describePortalMessage(name));
      this.queue.push({ k: 'describe', portal: null, internal: true, target: p });
    }
    this.execSerial++;
    this.forward(msg, p);
  }

  /**
   * A portal we did not see bound is a SQL cursor (DECLARE): its statement was judged then.
   * Its state is not kept: its shape is asked before each Execute.
   */
  private portalFor(name: string): PortalState {
    const p = this.portals.get(name);
    if (p) return p;
    const text = `FETCH FROM ${name === '' ? 'unnamed portal' : JSON.stringify(name)}`;
    return { stmt: { text, units: [opaqueUnit(text, 'fetch')], decision: { action: 'allow' } }, bind: null, shape: undefined, describedAt: -1 };
  }

  private onCloseMsg(msg: Buffer): void {
    const c = readTarget(msg);
    if (c.kind === 'S') this.statements.delete(c.name);
    else this.portals.delete(c.name);
    this.forward(msg, { k: 'close' });
  }

  private onFunctionCall(msg: Buffer): Promise<void> | void {
    const startedAt = Date.now();
    const { oid } = readFunctionCall(msg);
    const unit = opaqueUnit(`-- FunctionCall oid ${oid}`, 'function_call');
    // A fast-path call cannot be classified: it is refused unless parse errors are allowed.
    const j = judge(this.session, [unit], this.o.onParseError === 'allow' ? null : 'function call');
    const go = (jj: Judged) => {
      if (jj.deny) {
        const text = denialMessage(jj.deny);
        this.refuseQuery(this.recordDenied(jj, startedAt, text), text);
        return;
      }
      this.execSerial++;
      this.forward(msg, { k: 'func', unit, decision: jj.decisions[0], ...acc(startedAt) });
    };
    if (j instanceof Promise) return j.then(go);
    go(j);
  }

  // ---- upstream → client --------------------------------------------------------------

  private pumpUpstream(): void {
    if (this.upstreamBusy || this.clientFull || this.closed) return;
    let f: Frame | null;
    while ((f = this.uf.next())) {
      let wait: Promise<void> | void;
      try {
        wait = this.onUpstreamMessage(f);
      } catch (e) {
        if (!(e instanceof RangeError)) throw e;
        this.upstreamViolation(`malformed ${String.fromCharCode(f.type)} message from upstream: ${e.message}`);
        return;
      }
      if (this.closed) return;
      if (wait) {
        // Output held meanwhile is bounded (upstream is paused) and goes out in one write.
        this.upstreamBusy = true;
        this.upstream.pause();
        wait.then(
          () => {
            this.upstreamBusy = false;
            this.flushClient();
            this.flow();
          },
          (e: Error) => this.fatal('internal error', e),
        );
        return;
      }
    }
    if (this.uf.error) {
      this.fatal(`upstream sent an invalid or oversized message (${this.uf.error.code}, ${this.uf.error.length} bytes)`);
      return;
    }
    this.flushClient();
  }

  private onUpstreamMessage(f: Frame): Promise<void> | void {
    const t = f.type;
    // Asynchronous messages may come at any time; each can carry a value.
    if (t === B.NoticeResponse) return void this.toClient.push(this.masked ? maskErrorMessage(f.bytes, this.session.masker).bytes : f.bytes);
    if (t === B.ParameterStatus) return void this.toClient.push(this.masked ? maskParameterStatus(f.bytes, this.session.masker) : f.bytes);
    if (t === B.NotificationResponse) return void this.toClient.push(this.masked ? maskNotification(f.bytes, this.session.masker) : f.bytes);
    const p = this.queue[0];
    if (!p) {
      // Unsolicited: only an error (a FATAL before the server closes, an admin shutdown) is
      // expected. Rows or results nobody asked for mean we lost track: never pass them on.
      if (t === B.ErrorResponse) return void this.toClient.push(this.errorOut(f.bytes).bytes);
      return this.upstreamViolation(`unsolicited ${String.fromCharCode(t)} message from upstream`);
    }
    switch (p.k) {
      case 'query':
        return this.onQueryResponse(p, f);
      case 'execute':
      case 'func':
        return this.onResultMessage(p, f);
      case 'denyq':
        if (t === B.ErrorResponse) return this.afterRecord(p.rec, f.bytes);
        if (t === B.ReadyForQuery) {
          this.queue.shift();
          this.toClient.push(f.bytes);
        }
        return; // anything else of the DO block is ours, not the caller's
      case 'deny':
        if (t === B.ErrorResponse) {
          this.queue.shift();
          this.skipToSync();
          return this.afterRecord(p.rec, f.bytes);
        }
        if (t === B.CommandComplete) {
          // The DO block cannot complete; if it somehow did, the caller still gets the refusal.
          this.queue.shift();
          return this.afterRecord(p.rec, errorResponse({ code: DENIED_SQLSTATE, message: p.message }));
        }
        return; // ParseComplete / BindComplete of the injected statement
      case 'parse':
        if (t === B.ErrorResponse) {
          if (p.prev) this.statements.set(p.name, p.prev);
          else this.statements.delete(p.name);
        }
        return this.simpleResponse(f, B.ParseComplete);
      case 'bind':
        if (t === B.ErrorResponse) {
          if (p.prev) this.portals.set(p.name, p.prev);
          else this.portals.delete(p.name);
        }
        return this.simpleResponse(f, B.BindComplete);
      case 'close':
        return this.simpleResponse(f, B.CloseComplete);
      case 'describe':
        return this.onDescribeResponse(p, f);
      case 'sync':
        if (t !== B.ReadyForQuery) return this.upstreamViolation(`unexpected ${String.fromCharCode(t)} message before ReadyForQuery`);
        this.queue.shift();
        this.toClient.push(f.bytes);
        return;
    }
  }

  private onDescribeResponse(p: Extract<Pending, { k: 'describe' }>, f: Frame): Promise<void> | void {
    const t = f.type;
    if (t === B.ParameterDescription) {
      if (!p.internal) this.toClient.push(f.bytes);
      return;
    }
    if (t === B.RowDescription || t === B.NoData) {
      const shape = t === B.NoData ? null : this.readShape(f.bytes);
      if (shape instanceof Promise) return shape.then((s) => this.described(p, f, s));
      this.described(p, f, shape);
      return;
    }
    return this.simpleResponse(f, -1);
  }

  private described(p: Extract<Pending, { k: 'describe' }>, f: Frame, shape: ResultShape | null): void {
    if (p.target) p.target.shape = shape;
    if (p.portal) p.portal.shape = shape;
    this.queue.shift();
    if (!p.internal) this.toClient.push(f.bytes);
  }

  /**
   * Columns of a RowDescription, traced to their origin. A table OID the catalog does not
   * know (created since it was read) waits for one reload before the rows are planned.
   */
  private readShape(msg: Buffer): ResultShape | Promise<ResultShape> {
    const catalog = this.o.catalog;
    const shape = readRowDescription(msg, this.session.masker, this.masked ? catalog : null);
    if (!shape.unresolved || !catalog) return shape;
    const reload = catalog.refreshForUnknown();
    if (!reload) return shape;
    return reload.then(
      () => readRowDescription(msg, this.session.masker, catalog),
      () => shape, // traced by output name; the restricted check refuses what it cannot follow
    );
  }

  /** ParseComplete/BindComplete/CloseComplete (`expected`) or an ErrorResponse (then skip to Sync). */
  private simpleResponse(f: Frame, expected: number): Promise<void> | void {
    if (f.type === B.ErrorResponse) {
      this.queue.shift();
      this.skipToSync();
      this.toClient.push(this.errorOut(f.bytes).bytes);
      return;
    }
    if (f.type !== expected) return this.upstreamViolation(`unexpected ${String.fromCharCode(f.type)} message`);
    this.queue.shift();
    this.toClient.push(f.bytes);
  }

  /**
   * After an extended-protocol error PostgreSQL answers nothing until Sync: drop what we
   * expected for the messages it will skip (they never ran, so nothing is recorded).
   */
  private skipToSync(): void {
    const q = this.queue;
    while (q.length > 0 && q[0].k !== 'sync') q.shift();
    if (q.length === 0) this.upstreamSkipping = true;
  }

  private onQueryResponse(p: QueryPending, f: Frame): Promise<void> | void {
    const t = f.type;
    if (t === B.ReadyForQuery) {
      this.queue.shift();
      const rec = this.recordSkipped(p);
      return rec ? this.afterRecord(rec, f.bytes) : void this.toClient.push(f.bytes);
    }
    if (t === B.EmptyQueryResponse) {
      this.toClient.push(f.bytes);
      return;
    }
    return this.onResultMessage(p, f);
  }

  /**
   * Statements of a simple query after one that failed never ran: PostgreSQL stops at the
   * first error. They are recorded as such (the caller sent them; an investigator wants them).
   */
  private recordSkipped(p: QueryPending): Promise<Result<void>> | null {
    const units = p.judged.units;
    if (!p.failed || p.idx >= units.length) return null;
    const recs: Promise<Result<void>>[] = [];
    for (let i = p.idx; i < units.length; i++) {
      recs.push(this.session.record({ unit: units[i], decision: p.judged.decisions[i], startedAt: p.startedAt, result: { status: 'skipped', error: 'not executed: an earlier statement of the same query failed' } }));
    }
    return Promise.all(recs).then((rs) => rs.find((r) => !r.ok) ?? rs[0]);
  }

  /** Rows, copy data and the completion of one statement (simple query, Execute or FunctionCall). */
  private onResultMessage(p: ResultPending, f: Frame): Promise<void> | void {
    const t = f.type;
    const bytes = f.bytes;
    switch (t) {
      case B.DataRow: {
        const shape = p.k === 'execute' && p.fromPortal ? p.portal.shape : p.shape;
        if (!shape) {
          if (this.masked) return this.upstreamViolation('a row arrived whose columns were not described');
          p.bytes += bytes.length;
          this.toClient.push(bytes);
          return;
        }
        if (this.masked && bytes.readInt16BE(5) !== shape.names.length) return this.upstreamViolation('a row does not match its description');
        const out = shape.plan ? maskDataRow(bytes, shape) : bytes;
        p.bytes += out.length;
        if (p.sample === null || p.sample.length < SAMPLE_ROWS) (p.sample ??= []).push(sampleRow(out, shape));
        this.toClient.push(out);
        return;
      }
      case B.RowDescription: {
        if (p.k !== 'query') return this.upstreamViolation('RowDescription outside a simple query');
        const shape = this.readShape(bytes);
        const go = (s: ResultShape) => {
          p.shape = s;
          p.sample = null;
          this.toClient.push(bytes);
        };
        if (shape instanceof Promise) return shape.then(go);
        go(shape);
        return;
      }
      case B.CopyData:
      case B.CopyDone:
        if (!p.copyOut) return this.upstreamViolation('copy data outside COPY TO');
        if (!p.copyBlocked) {
          p.bytes += bytes.length;
          this.toClient.push(bytes);
        }
        return;
      case B.CopyOutResponse:
      case B.CopyBothResponse:
        p.copyOut = true;
        if (this.masked || t === B.CopyBothResponse) {
          // Copy rows carry no column names, so masking rules cannot be applied: refuse.
          p.copyBlocked = true;
          this.toClient.push(errorResponse({ code: DENIED_SQLSTATE, message: 'gatehouse: COPY TO STDOUT is refused while masking rules apply to you' }));
          return;
        }
        this.toClient.push(bytes);
        return;
      case B.CopyInResponse:
        this.toClient.push(bytes);
        return;
      case B.CommandComplete:
      case B.PortalSuspended:
      case B.FunctionCallResponse: {
        const { tag, rows } = t === B.CommandComplete ? commandRows(bytes) : { tag: t === B.PortalSuspended ? 'suspended' : 'function', rows: undefined };
        const unit = this.unitOf(p);
        if (unit && t === B.CommandComplete && changesSchema(unit)) this.o.catalog?.invalidate();
        if (p.copyBlocked) {
          // The refusal went out already; the completion is dropped.
          this.recordResult(p, { status: DENIED_SQLSTATE, rows: 0, error: 'COPY TO STDOUT refused: masking applies' }, { action: 'deny', rule: 'masking' });
          this.completeStatement(p);
          return;
        }
        const rec = this.recordResult(p, { status: tag, rows }, null);
        this.completeStatement(p);
        return this.afterRecord(rec, bytes);
      }
      case B.ErrorResponse: {
        const e = this.errorOut(bytes);
        if (SCHEMA_CHANGED.has(e.code)) this.o.catalog?.invalidate();
        const rec = this.recordResult(p, { status: e.code, error: `${e.code}: ${e.message}` }, null);
        if (p.k === 'query') p.failed = true;
        this.completeStatement(p);
        if (p.k === 'execute') this.skipToSync();
        return this.afterRecord(rec, e.bytes);
      }
      case B.EmptyQueryResponse:
        if (p.k === 'execute') this.queue.shift();
        this.toClient.push(bytes);
        return;
      case B.ReadyForQuery:
        if (p.k !== 'func') return this.upstreamViolation('ReadyForQuery before the result completed');
        // FunctionCall ends with ReadyForQuery.
        this.queue.shift();
        this.toClient.push(bytes);
        return;
      default:
        return this.upstreamViolation(`unexpected ${String.fromCharCode(t)} message in a result`);
    }
  }

  /** An ErrorResponse as this caller may see it (masked), with its SQLSTATE and message for the audit. */
  private errorOut(bytes: Buffer): { bytes: Buffer; code: string; message: string } {
    if (this.masked) return maskErrorMessage(bytes, this.session.masker);
    const e = parseErrorFields(bytes);
    return { bytes, code: e.code, message: e.message };
  }

  /** Statement done: advance a simple query to its next statement, or retire an Execute. */
  private completeStatement(p: ResultPending): void {
    if (p.k === 'query') {
      p.idx++;
      p.startedAt = Date.now();
      p.shape = undefined;
      p.bytes = 0;
      p.sample = null;
      p.copyOut = false;
      p.copyBlocked = false;
    } else if (p.k === 'execute') this.queue.shift();
  }

  private unitOf(p: ResultPending): Unit | undefined {
    if (p.k === 'query') {
      const units = p.judged.units;
      return units[p.idx < units.length ? p.idx : units.length - 1];
    }
    return p.k === 'execute' ? p.portal.stmt.units[0] : p.unit;
  }

  private recordResult(p: ResultPending, r: { status: string; rows?: number; error?: string }, override: Decision | null): Promise<Result<void>> {
    let decision: Decision;
    let params: (string | null)[] | undefined;
    const unit = this.unitOf(p);
    if (p.k === 'query') decision = p.judged.decisions[p.idx < p.judged.units.length ? p.idx : p.judged.units.length - 1];
    else if (p.k === 'execute') {
      decision = p.portal.stmt.decision;
      if (p.portal.bind) params = bindParams(p.portal.bind);
    } else decision = p.decision;
    if (!unit) return Promise.resolve({ ok: true, value: undefined });
    const shape = p.k === 'execute' && p.fromPortal ? p.portal.shape : p.shape;
    return this.session.record({
      unit,
      decision: override ?? decision,
      startedAt: p.startedAt,
      result: { status: r.status, rows: r.rows, bytes: p.bytes, durationMs: Date.now() - p.startedAt, ...(r.error ? { error: r.error } : {}) },
      ...(params ? { params } : {}),
      ...(p.sample && shape ? { sample: { columns: shape.names, rows: p.sample } } : {}),
    });
  }

  /**
   * Send `bytes` once the audit event is durable; if it cannot be written, fail closed.
   * With batched durability the reply goes out at once and a failed write ends the session.
   */
  private afterRecord(rec: Promise<Result<void>>, bytes: Buffer): Promise<void> | void {
    if (!this.strict) {
      this.toClient.push(bytes);
      rec.then(
        (r) => {
          if (!r.ok) this.fatal('audit log unavailable; session closed');
        },
        (e: Error) => this.fatal('audit log unavailable; session closed', e),
      );
      return;
    }
    return rec.then((r) => {
      this.toClient.push(r.ok ? bytes : errorResponse(AUDIT_FAILED));
    });
  }

  // ---- failures -----------------------------------------------------------------------

  /** A frame we refuse: audited, answered with a FATAL error, connection closed. */
  private protocolError(sqlstate: string, message: string): void {
    void this.session.protocolError(message, { sqlstate });
    this.toClient.push(errorResponse({ severity: 'FATAL', code: sqlstate, message: `gatehouse: ${message}` }));
    this.flushClient();
    this.close(`protocol error: ${message}`, true);
  }

  /**
   * The upstream sent something we did not expect where we are: we no longer know what a
   * message belongs to, so nothing more is relayed (audited; the caller gets a FATAL error).
   */
  private upstreamViolation(message: string): void {
    void this.session.protocolError(`upstream: ${message}`, { sqlstate: '08P01' });
    this.fatal(`protocol error: ${message}; session closed`);
  }

  private fatal(message: string, e?: Error): void {
    this.o.log.error({ err: e?.message }, message);
    if (!this.closed) {
      this.toClient.push(errorResponse({ severity: 'FATAL', code: '08006', message: `gatehouse: ${message}` }));
      this.flushClient();
    }
    this.close(message, true);
  }
}

/** Statement kinds after which the catalog may be out of date. */
const SCHEMA_KINDS = new Set(['create', 'alter', 'drop', 'comment', 'grant', 'revoke']);

function changesSchema(unit: Unit): boolean {
  const kinds = unit.match.statement;
  if (!Array.isArray(kinds)) return false;
  for (const k of kinds) if (SCHEMA_KINDS.has(k)) return true;
  return false;
}

/** Errors that say the schema changed under a cached plan or name. */
const SCHEMA_CHANGED = new Set(['0A000', '42P01', '42703', '42P07']);

/** One syscall for a pump's worth of messages; false when the socket's buffer is full. */
function writeAll(s: Socket, out: Buffer[]): boolean {
  if (out.length === 1) return s.write(out[0]);
  s.cork();
  let ok = true;
  for (const b of out) ok = s.write(b);
  s.uncork();
  return ok;
}
