/**
 * One caller's connection after login: the kit's two-socket pump with the MySQL command
 * phase on top. Caller commands are decoded (only what policy, masking and audit need),
 * judged, and forwarded as received — or answered by the gateway (a refusal is an ERR packet
 * naming the rule; the session continues). Upstream packets are attributed to the command
 * they answer (the conversation's FIFO, sequence ids checked on both sides), result rows
 * masked, and each statement recorded before its final packet goes out. Anything out of
 * sequence or out of place closes the session (audited).
 */
import { createHash } from 'node:crypto';
import type { Socket } from 'node:net';
import { denialMessage, type Decision, type Judgement, type Logger, type Masker, type Recorded, type Session, type Unit, type Veto } from '@gatehouse/core';
import { FramePump, then, type Side } from '@gatehouse/connector-kit';
import type { Catalog } from './catalog.js';
import {
  newResult,
  type Entry,
  type ExecuteEntry,
  type FetchEntry,
  type FieldListEntry,
  type PrepareEntry,
  type QueryEntry,
  type ResultEntry,
  type SimpleEntry,
  type Stmt,
} from './conversation.js';
import { maskErr, maskMessageText } from './message-mask.js';
import { encode, errPayload, PacketFramer, readOk, Reader, statusOf, type Packet, type PacketFramingError } from './packet.js';
import { readParams } from './params.js';
import { CAP, COM, STATUS } from './protocol.js';
import { CatalogRestrictedView, untraceableFunction } from './restricted-view.js';
import { maskBinaryRow, maskTextRow, readColumn, sampleBinaryRow, sampleTextRow, shapeOf } from './result-shape.js';
import { all, DENIED_CODE, DENIED_SQLSTATE, StatementAudit } from './statement-audit.js';
import { opaqueUnit, parseErrorJudgement, RESTRICTED_RULE, restrictedVeto, unitsFor, vetoLocalInfile } from './units.js';

const SAMPLE_ROWS = 3;
/** Statement kinds after which the catalog may be out of date. */
const SCHEMA_KINDS = new Set(['create', 'alter', 'drop', 'grant', 'revoke']);
/** ER_NO_SUCH_TABLE, ER_BAD_FIELD_ERROR, ER_TABLE_EXISTS_ERROR, ER_SP_DOES_NOT_EXIST. */
const SCHEMA_CHANGED = new Set([1146, 1054, 1050, 1305]);
const MAX_COLUMNS = 4096;

/** At COM_STMT_PREPARE: a reviewed statement is settled at each execute, with its parameters (see onExecute). */
const DEFER_REVIEW = { deferReview: true } as const;
const RESTRICTED_CATALOG_DOWN: Decision = { action: 'deny', rule: RESTRICTED_RULE, reason: 'the upstream catalog cannot be read, so masking cannot be enforced' };

export interface RelayOptions {
  /** The session's default database at login. */
  database: string;
  onParseError: 'deny' | 'allow';
  maxMessageBytes: number;
  maxResultMessageBytes: number;
  /** Most prepared statements a session may hold. */
  maxPrepared: number;
  catalog: Catalog | null;
  maskingMode: 'restricted' | 'permissive';
  /** Capabilities in force on both sides. */
  capabilities: number;
  /** Server status flags at login. */
  status: number;
  log: Logger;
  /**
   * COM_CHANGE_USER: authenticate the caller again (the relay runs the password rounds) and
   * give the new Session, or a refusal message. Absent: COM_CHANGE_USER is refused.
   */
  changeUser?: ChangeUser;
  onClose: () => void;
}

export interface ChangeUser {
  /** A new Session for `token`, or why not; `sameUpstream`: the new identity logs in upstream with the current credential. */
  authenticate(token: string, claimedUser: string): Promise<{ ok: true; session: Session; sameUpstream: boolean } | { ok: false; code: number; sqlstate: string; message: string }>;
  /** RSA key material for callers on loopback without TLS. */
  tls: boolean;
  scramble(): Buffer;
  decrypt(data: Buffer, scramble: Buffer): string | null;
  publicKey: string;
}

export class Relay {
  private readonly pump: FramePump<Packet>;
  private session: Session;
  private masker: Masker;
  private veto: Veto | null = null;
  private readonly audit: StatementAudit;
  private readonly deprecateEof: boolean;
  private readonly expected: Entry[] = [];
  private readonly stmts = new Map<number, Stmt>();
  private database: string;
  private status: number;
  /** A LOAD DATA LOCAL INFILE transfer in progress: caller packets are file data for this entry. */
  private infile: QueryEntry | null = null;
  /** COM_CHANGE_USER in progress: caller packets are its authentication rounds. */
  private changing: ChangeUserState | null = null;
  /** Work in progress that the other side must wait for (one handler at a time across both sides). */
  private waiting: Promise<void> | null = null;
  private readonly messageMask: (t: string) => string;

  constructor(
    client: Socket,
    upstream: Socket,
    session: Session,
    private readonly options: RelayOptions,
  ) {
    this.session = session;
    this.masker = session.masker;
    this.database = options.database;
    this.status = options.status;
    this.deprecateEof = (options.capabilities & CAP.DEPRECATE_EOF) !== 0;
    this.audit = new StatementAudit(() => this.session);
    this.messageMask = (t) => maskMessageText(t, this.masker);
    this.bindSession(session);
    this.pump = new FramePump<Packet>(client, upstream, new PacketFramer(options.maxMessageBytes), new PacketFramer(options.maxResultMessageBytes), {
      onClientFrame: (p) => this.serial(() => this.onClient(p)),
      onUpstreamFrame: (p) => this.serial(() => this.onUpstream(p)),
      onFramingError: (side, e) => this.framingError(side, e as PacketFramingError),
      onInternalError: (_side, e) => this.fatal('internal error', e),
      onSocketError: (side, e) =>
        side === 'client' ? options.log.debug({ err: e.message }, 'client socket error') : options.log.warn({ err: e.message }, 'upstream socket error'),
      onClosed: (reason) => void this.session.end(reason).finally(options.onClose),
    });
  }

  start(): void {
    this.pump.start();
  }

  close(reason: string): void {
    this.pump.close(reason);
  }

  private bindSession(session: Session): void {
    this.session = session;
    this.masker = session.masker;
    const catalog = this.options.catalog;
    const view = this.masker.active && this.options.maskingMode === 'restricted' && catalog ? new CatalogRestrictedView(this.masker, catalog) : null;
    if (!view) {
      this.veto = null;
      return;
    }
    const restricted = restrictedVeto(view);
    this.veto = (unit) => {
      const cols = unit.context.columns as { functions?: readonly string[] } | undefined;
      const f = cols?.functions ? untraceableFunction(cols.functions) : null;
      if (f) return { action: 'deny', rule: RESTRICTED_RULE, reason: `function "${f}" reads data that cannot be traced to columns; it is refused while masking applies to you` };
      return restricted(unit);
    };
  }

  /** One handler at a time, across both sides: a handler that waits holds the other side too. */
  private serial(fn: () => Promise<void> | void): Promise<void> | void {
    if (this.waiting) {
      const p = this.waiting.then(fn);
      this.hold(p);
      return p;
    }
    const r = fn();
    if (r instanceof Promise) this.hold(r);
    return r;
  }

  private hold(p: Promise<void>): void {
    this.waiting = p;
    const clear = () => {
      if (this.waiting === p) this.waiting = null;
    };
    p.then(clear, clear);
  }

  // -------------------------------------------------------------------------------------
  // Caller → upstream

  private onClient(p: Packet): Promise<void> | void {
    if (this.pump.closed) return;
    if (this.infile) return this.infileData(this.infile, p);
    if (this.changing) return this.changeUserRound(p);
    if (p.seq !== 0) return this.protocolError(`command packet out of sequence (sequence id ${p.seq})`);
    const b = p.payload;
    if (b.length === 0) return this.protocolError('empty command packet');
    try {
      switch (b[0]) {
        case COM.QUERY:
          return this.onQuery(p);
        case COM.STMT_PREPARE:
          return this.onPrepare(p);
        case COM.STMT_EXECUTE:
          return this.onExecute(p);
        case COM.STMT_FETCH:
          return this.onFetch(p);
        case COM.STMT_SEND_LONG_DATA:
          return this.onLongData(p);
        case COM.STMT_CLOSE: {
          const id = new Reader(b, 1).u32();
          this.stmts.delete(id);
          return this.forward(p, 0);
        }
        case COM.STMT_RESET: {
          const stmt = this.stmts.get(new Reader(b, 1).u32());
          return this.simple(p, 'ok', {
            onOk: () => {
              if (stmt) {
                stmt.longData.clear();
                stmt.cursor = null;
              }
            },
          });
        }
        case COM.PING:
          return this.simple(p, 'ok');
        case COM.SET_OPTION:
          return this.simple(p, 'ok');
        case COM.STATISTICS:
          return this.simple(p, 'any');
        case COM.RESET_CONNECTION:
          return this.simple(p, 'ok', { onOk: () => this.stmts.clear() });
        case COM.INIT_DB:
          return this.onInitDb(p);
        case COM.FIELD_LIST:
          return this.onFieldList(p);
        case COM.CHANGE_USER:
          return this.onChangeUser(p);
        case COM.QUIT:
          this.forward(p, 0);
          this.pump.flushUpstream();
          this.close('client quit');
          return;
        default:
          return this.unsupported(b[0]);
      }
    } catch (e) {
      if (e instanceof RangeError) return this.protocolError(`malformed command 0x${b[0].toString(16)}: ${e.message}`);
      throw e;
    }
  }

  /** Forward a caller packet upstream at sequence id `seq`. */
  private forward(p: Packet, seq: number): void {
    this.pump.toUpstream(encode(p.payload, seq, p.raw));
  }

  private get noBackslashEscapes(): boolean {
    return (this.status & STATUS.NO_BACKSLASH_ESCAPES) !== 0;
  }

  /**
   * The Session's judgement, restricted SQL for a masked caller (after a catalog reload when
   * one is due; a catalog that cannot be read refuses, fail closed), and LOAD DATA LOCAL.
   */
  private judge(units: readonly Unit[], parseError: string | null, deferReview = false): Judgement | Promise<Judgement> {
    if (parseError !== null) return parseErrorJudgement(units);
    const catalog = this.options.catalog;
    const finish = (j: Judgement) => vetoLocalInfile(j);
    const options = deferReview ? DEFER_REVIEW : undefined;
    if (!this.veto || !catalog || !catalog.needsLoad) {
      const j = this.session.judge(units, this.veto, options);
      return then(j, finish);
    }
    return catalog.ready().then(
      async () => finish(await this.session.judge(units, this.veto, options)),
      () => ({ units, decisions: units.map(() => RESTRICTED_CATALOG_DOWN), deny: RESTRICTED_CATALOG_DOWN, denyIndex: 0 }),
    );
  }

  private onQuery(p: Packet): Promise<void> | void {
    const startedAt = Date.now();
    const sql = p.payload.toString('utf8', 1);
    const { units, parseError } = unitsFor(sql, this.database, this.options.onParseError, this.noBackslashEscapes);
    return then(this.judge(units, parseError), (j) => {
      if (j.deny) return this.refuse(this.audit.refused(j, startedAt, denialMessage(j.deny)), denialMessage(j.deny));
      if (units.length === 0) {
        // Nothing but comments or `;`: the server answers with its own error; nothing to judge.
        this.forward(p, 0);
        this.expect({
          kind: 'query',
          cseq: 1,
          useq: 1,
          judgement: { units: [opaqueUnit(sql, 'unknown', this.database)], decisions: [{ action: 'allow' }], deny: null, denyIndex: -1 },
          index: 0,
          startedAt,
          r: newResult(),
        });
        return;
      }
      this.forward(p, 0);
      this.expect({ kind: 'query', cseq: 1, useq: 1, judgement: j, index: 0, startedAt, r: newResult() });
    });
  }

  /** Answer with an ERR naming the rule (after the event is recorded); the session continues. */
  private refuse(recorded: Recorded | null, text: string, code = DENIED_CODE, sqlstate = DENIED_SQLSTATE): Promise<void> | void {
    this.expect({ kind: 'local', cseq: 1, useq: 0, payload: errPayload(code, sqlstate, text), recorded });
    return this.flushLocal();
  }

  private expect(e: Entry): void {
    this.expected.push(e);
  }

  /** Send the gateway's own answers that reached the head of the FIFO. */
  private flushLocal(): Promise<void> | void {
    while (this.expected.length > 0 && this.expected[0].kind === 'local') {
      const e = this.expected[0];
      this.expected.shift();
      const send = () => this.pump.toClient(encode(e.payload, e.cseq));
      if (e.recorded) {
        const r = this.audit.release(
          e.recorded,
          () => encode(e.payload, e.cseq),
          (b) => this.pump.toClient(b),
          () => e.cseq,
        );
        if (r instanceof Promise) return r.then(() => this.flushLocal());
      } else send();
    }
  }

  private onPrepare(p: Packet): Promise<void> | void {
    const startedAt = Date.now();
    const sql = p.payload.toString('utf8', 1);
    if (this.stmts.size >= this.options.maxPrepared) {
      return this.refuse(null, `gatehouse: too many prepared statements (limit ${this.options.maxPrepared})`, 1461, '42000');
    }
    const { units, parseError } = unitsFor(sql, this.database, this.options.onParseError, this.noBackslashEscapes);
    const all = units.length > 0 ? units : [opaqueUnit(sql, 'unknown', this.database)];
    // Preparing runs nothing: a statement that needs review is reviewed at each execute, with
    // the values it runs with (an approval covers text and parameters, not the text alone).
    return then(this.judge(all, parseError, true), (j) => {
      if (j.deny) return this.refuse(this.audit.refused(j, startedAt, denialMessage(j.deny)), denialMessage(j.deny));
      const review = j.decisions.findIndex((d) => d.action === 'review');
      const at = review >= 0 ? review : 0;
      this.forward(p, 0);
      this.expect({ kind: 'prepare', cseq: 1, useq: 1, text: sql, unit: all[at], decision: j.decisions[at], phase: 'first', stmt: null, remaining: 0 });
    });
  }

  private onExecute(p: Packet): Promise<void> | void {
    const b = p.payload;
    const r = new Reader(b, 1);
    const id = r.u32();
    const stmt = this.stmts.get(id) ?? null;
    const startedAt = Date.now();
    let params: (string | null)[] = [];
    let paramsHash: string | null = null;
    if (stmt) {
      const decoded = readParams(b, stmt);
      params = decoded.params;
      if (decoded.types) stmt.types = decoded.types;
      if (stmt.decision.action === 'review') paramsHash = this.executeHash(b, stmt);
      stmt.longData.clear();
      stmt.cursor = null;
    }
    const unit = stmt?.unit ?? opaqueUnit(`EXECUTE (unknown statement ${id})`, 'execute', this.database);
    const run = (decision: Decision) => {
      this.forward(p, 0);
      this.expect({ kind: 'execute', cseq: 1, useq: 1, stmt, unit, decision, params, startedAt, r: newResult() });
    };
    if (!stmt || stmt.decision.action !== 'review') return run(stmt?.decision ?? { action: 'allow' });
    const refusal = (d: Decision) => {
      const text = denialMessage(d);
      return this.refuse(this.audit.refused({ units: [unit], decisions: [d], deny: d, denyIndex: 0 }, startedAt, text), text);
    };
    if (paramsHash === null) {
      return refusal({
        action: 'deny',
        rule: stmt.decision.rule,
        reason: `rule "${stmt.decision.rule}" requires review; parameters sent as long data cannot be bound to an approval`,
      });
    }
    return this.session.settleReviews([unit], [stmt.decision], { paramsHash }).then((j) => (j.deny ? refusal(j.deny) : run(j.decisions[0])));
  }

  /**
   * What an approval of a prepared statement's execution is bound to: SHA-256 of the
   * parameter types and values as sent. Values sent before as long data were kept only in
   * part (for the audit): null, and the execution is refused.
   */
  private executeHash(b: Buffer, stmt: Stmt): string | null {
    if (stmt.longData.size > 0) return null;
    return createHash('sha256')
      .update(stmt.types ?? Buffer.alloc(0))
      .update(b.subarray(1 + 4 + 1 + 4))
      .digest('hex');
  }

  private onFetch(p: Packet): void {
    const r = new Reader(p.payload, 1);
    const id = r.u32();
    const n = r.u32();
    const stmt = this.stmts.get(id) ?? null;
    const text = `FETCH ${n} FROM ${stmt ? stmt.text : `(unknown statement ${id})`}`;
    this.forward(p, 0);
    this.expect({
      kind: 'fetch',
      cseq: 1,
      useq: 1,
      stmt,
      unit: opaqueUnit(text, 'fetch', this.database),
      decision: stmt?.decision ?? { action: 'allow' },
      startedAt: Date.now(),
      r: newResult('rows', stmt?.cursor ?? null),
    });
  }

  private onLongData(p: Packet): void {
    const r = new Reader(p.payload, 1);
    const stmt = this.stmts.get(r.u32());
    const param = r.u16();
    if (stmt && param < stmt.params) {
      const prev = stmt.longData.get(param) ?? Buffer.alloc(0);
      if (prev.length < 1024) stmt.longData.set(param, Buffer.concat([prev, r.rest().subarray(0, 1024 - prev.length)]));
    }
    this.forward(p, 0); // no response
  }

  private simple(p: Packet, reply: 'ok' | 'any', o: Partial<SimpleEntry> = {}): void {
    this.forward(p, 0);
    this.expect({ kind: 'simple', cseq: 1, useq: 1, reply, startedAt: Date.now(), ...o });
  }

  private onInitDb(p: Packet): Promise<void> | void {
    const startedAt = Date.now();
    const db = p.payload.toString('utf8', 1);
    const text = `USE \`${db.replace(/`/g, '``')}\``;
    const { units, parseError } = unitsFor(text, this.database, this.options.onParseError, false);
    return then(this.judge(units, parseError), (j) => {
      if (j.deny) return this.refuse(this.audit.refused(j, startedAt, denialMessage(j.deny)), denialMessage(j.deny));
      this.simple(p, 'ok', { unit: units[0], decision: j.decisions[0], startedAt, onOk: () => (this.database = db) });
    });
  }

  private onFieldList(p: Packet): Promise<void> | void {
    const startedAt = Date.now();
    const r = new Reader(p.payload, 1);
    const table = r.cstringOrRest();
    const text = `SHOW COLUMNS FROM \`${table.replace(/`/g, '``')}\``;
    const { units, parseError } = unitsFor(text, this.database, this.options.onParseError, false);
    return then(this.judge(units, parseError), (j) => {
      if (j.deny) return this.refuse(this.audit.refused(j, startedAt, denialMessage(j.deny)), denialMessage(j.deny));
      this.forward(p, 0);
      this.expect({ kind: 'field-list', cseq: 1, useq: 1, unit: units[0], decision: j.decisions[0], startedAt, bytes: 0 });
    });
  }

  /** Commands that reach past one session (shutdown, kill, process list, replication, debug): refused, the session continues. */
  private unsupported(command: number): Promise<void> | void {
    const text = `gatehouse: command 0x${command.toString(16)} is not supported through the gateway`;
    const unit = opaqueUnit(`-- command 0x${command.toString(16)}`, 'other', this.database);
    const d: Decision = { action: 'deny', rule: 'unsupported-command', reason: text.replace(/^gatehouse: /, '') };
    return this.refuse(this.audit.refused({ units: [unit], decisions: [d], deny: d, denyIndex: 0 }, Date.now(), text), text, 1047, '08S01');
  }

  private infileData(e: QueryEntry, p: Packet): void {
    if (p.seq !== (e.cseq & 0xff)) return this.protocolError(`LOCAL INFILE data out of sequence (${p.seq})`);
    e.cseq += p.parts;
    e.r.bytes += p.payload.length;
    this.pump.toUpstream(encode(p.payload, e.useq, p.raw));
    e.useq += p.parts;
    if (p.payload.length === 0) {
      this.infile = null;
      e.r.phase = 'first';
    }
  }

  // -------------------------------------------------------------------------------------
  // COM_CHANGE_USER: the caller logs in again, with a token, inside the session

  private onChangeUser(p: Packet): Promise<void> | void {
    const cu = this.options.changeUser;
    if (!cu) return this.refuse(null, 'gatehouse: COM_CHANGE_USER is not supported on this connection; reconnect instead', 1047, '08S01');
    if (this.expected.length > 0) return this.protocolError('COM_CHANGE_USER while other commands are in flight');
    const r = new Reader(p.payload, 1);
    const user = r.cstring();
    const authLen = r.u8();
    const auth = r.bytes(authLen);
    const db = r.left > 0 ? r.cstringOrRest() : '';
    if (r.left >= 2) r.u16(); // character set
    const plugin = r.left > 0 ? r.cstringOrRest() : '';
    const scramble = cu.scramble();
    this.changing = { user, db, seq: 1, scramble, step: 'switch' };
    void auth;
    void plugin;
    // Always ask for caching_sha2_password with a new scramble, then the full path (the token itself).
    this.sendChange(Buffer.concat([Buffer.from([0xfe]), Buffer.from('caching_sha2_password\0'), scramble, Buffer.from([0])]));
  }

  private sendChange(payload: Buffer): void {
    const c = this.changing as ChangeUserState;
    this.pump.toClient(encode(payload, c.seq));
    c.seq++;
  }

  private changeUserRound(p: Packet): Promise<void> | void {
    const c = this.changing as ChangeUserState;
    const cu = this.options.changeUser as ChangeUser;
    if (p.seq !== (c.seq & 0xff)) return this.protocolError(`COM_CHANGE_USER authentication out of sequence (${p.seq})`);
    c.seq++;
    const b = p.payload;
    if (c.step === 'switch') {
      if (b.length === 0) return this.changeFailed(1045, '28000', 'gatehouse: a token is required as the password');
      c.step = 'full';
      this.sendChange(Buffer.from([0x01, 0x04]));
      return;
    }
    let token: string | null;
    if (cu.tls) token = b.toString('utf8', 0, b.indexOf(0) < 0 ? b.length : b.indexOf(0));
    else if (b.length === 1 && b[0] === 0x02) {
      this.sendChange(Buffer.concat([Buffer.from([0x01]), Buffer.from(cu.publicKey)]));
      return;
    } else token = cu.decrypt(b, c.scramble);
    if (token === null || token === '') return this.changeFailed(1045, '28000', 'gatehouse: a token is required as the password');
    this.changing = null;
    return cu.authenticate(token, c.user).then((a) => {
      if (!a.ok) return this.changeFailed(a.code, a.sqlstate, `gatehouse: ${a.message}`, c.seq);
      if (!a.sameUpstream) return this.changeFailed(1045, '28000', 'gatehouse: this identity logs in upstream with another role; reconnect instead of COM_CHANGE_USER', c.seq);
      const old = this.session;
      void old.end('change user');
      this.bindSession(a.session);
      this.stmts.clear();
      // The upstream session is reset as COM_CHANGE_USER would (variables, temporary tables,
      // prepared statements, transaction), then the requested database is selected.
      const reset = encode(Buffer.from([COM.RESET_CONNECTION]), 0);
      this.pump.toUpstream(reset);
      const seq = c.seq;
      const finish = (payload: Buffer) => {
        if (payload[0] === 0xff) return this.pump.toClient(encode(maskErr(payload, this.masker).payload, seq));
        this.pump.toClient(encode(payload, seq));
      };
      if (c.db) {
        this.expect({
          kind: 'simple',
          cseq: 1,
          useq: 1,
          reply: 'ok',
          startedAt: Date.now(),
          internal: (pl) => (pl[0] === 0xff ? finish(pl) : this.initDbAfterChange(c.db, finish)),
        });
      } else this.expect({ kind: 'simple', cseq: 1, useq: 1, reply: 'ok', startedAt: Date.now(), internal: finish });
    });
  }

  private initDbAfterChange(db: string, finish: (payload: Buffer) => void): void {
    this.pump.toUpstream(encode(Buffer.concat([Buffer.from([COM.INIT_DB]), Buffer.from(db, 'utf8')]), 0));
    this.expect({
      kind: 'simple',
      cseq: 1,
      useq: 1,
      reply: 'ok',
      startedAt: Date.now(),
      internal: (pl) => {
        if (pl[0] === 0x00) this.database = db;
        finish(pl);
      },
    });
  }

  private changeFailed(code: number, sqlstate: string, message: string, seq?: number): void {
    const c = this.changing;
    this.changing = null;
    this.pump.toClient(encode(errPayload(code, sqlstate, message), seq ?? c?.seq ?? 1));
    // As MySQL does: a failed COM_CHANGE_USER ends the connection.
    void this.session.protocolError(`COM_CHANGE_USER refused: ${message}`, { code });
    this.pump.close('change user refused', true);
  }

  // -------------------------------------------------------------------------------------
  // Upstream → caller

  private onUpstream(p: Packet): Promise<void> | void {
    if (this.pump.closed) return;
    const e = this.expected[0];
    if (!e || e.kind === 'local') {
      // Unsolicited: only an error before the server closes (killed, timed out) is expected.
      if (p.payload[0] === 0xff) {
        this.pump.toClient(encode(maskErr(p.payload, this.masker).payload, p.seq));
        return;
      }
      return this.upstreamViolation(`unsolicited packet from upstream (0x${(p.payload[0] ?? 0).toString(16)})`);
    }
    if (p.seq !== (e.useq & 0xff)) return this.upstreamViolation(`packet out of sequence from upstream (sequence id ${p.seq}, expected ${e.useq & 0xff})`);
    e.useq += p.parts;
    try {
      switch (e.kind) {
        case 'query':
        case 'execute':
        case 'fetch':
          return this.onResult(e, p);
        case 'prepare':
          return this.onPrepareResponse(e, p);
        case 'simple':
          return this.onSimpleResponse(e, p);
        case 'field-list':
          return this.onFieldListResponse(e, p);
      }
    } catch (err) {
      if (err instanceof RangeError) return this.upstreamViolation(`malformed packet from upstream: ${err.message}`);
      throw err;
    }
  }

  /** A packet of the response at the head, to the caller, at that response's sequence. */
  private send(e: Entry, payload: Buffer, raw: Buffer | null = null): void {
    const out = encode(payload, e.cseq, raw);
    e.cseq += Math.floor(payload.length / 0xffffff) + 1;
    this.pump.toClient(out);
  }

  /** The response at the head is complete: retire it, then any of the gateway's own answers behind it. */
  private retire(): Promise<void> | void {
    this.expected.shift();
    return this.flushLocal();
  }

  private isTerminator(p: Packet): boolean {
    const b = p.payload;
    return b[0] === 0xfe && (this.deprecateEof ? p.parts === 1 : b.length < 9);
  }

  private onResult(e: ResultEntry, p: Packet): Promise<void> | void {
    const r = e.r;
    const b = p.payload;
    switch (r.phase) {
      case 'infile':
        return this.upstreamViolation('upstream answered during a LOCAL INFILE transfer');
      case 'first': {
        if (b[0] === 0x00) {
          const ok = readOk(b);
          this.status = ok.status;
          return this.statementEnd(e, p, ok.status, ok.affectedRows, true);
        }
        if (b[0] === 0xff) return this.statementError(e, p);
        if (b[0] === 0xfb) return this.localInfileRequest(e, p);
        if (e.kind === 'fetch') return this.upstreamViolation('a result set header in answer to COM_STMT_FETCH');
        const n = new Reader(b).lenencInt();
        if (n < 1 || n > MAX_COLUMNS || b.length !== lenencSize(n)) return this.upstreamViolation(`unexpected packet where a result set begins (0x${b[0].toString(16)})`);
        r.columns = [];
        r.remaining = n;
        r.phase = 'columns';
        r.bytes += b.length;
        return this.send(e, b, p.raw);
      }
      case 'columns': {
        r.columns.push(readColumn(b));
        r.bytes += b.length;
        this.send(e, b, p.raw);
        if (--r.remaining === 0) {
          const unit = this.unitOf(e);
          const messages = unit ? /^\s*show\s+(warnings|errors)\b/i.test(unit.text) : false;
          r.shape = shapeOf(r.columns, this.masker, messages);
          r.sampleColumns = r.shape.names;
          r.phase = this.deprecateEof ? 'rows' : 'columns-eof';
        }
        return;
      }
      case 'columns-eof': {
        if (!(b[0] === 0xfe && b.length < 9)) return this.upstreamViolation('column definitions not followed by EOF');
        const status = statusOf(b, false);
        this.status = status;
        if (status & STATUS.CURSOR_EXISTS && e.kind === 'execute') return this.cursorOpened(e, p, status);
        r.phase = 'rows';
        return this.send(e, b, p.raw);
      }
      case 'rows': {
        if (b[0] === 0xff) return this.statementError(e, p);
        if (this.isTerminator(p)) {
          const status = statusOf(b, this.deprecateEof);
          this.status = status;
          if (status & STATUS.CURSOR_EXISTS && e.kind === 'execute' && r.rows === 0) return this.cursorOpened(e, p, status);
          return this.statementEnd(e, p, status, r.rows, false);
        }
        return this.row(e, p);
      }
    }
  }

  private row(e: ResultEntry, p: Packet): void {
    const r = e.r;
    const shape = r.shape;
    const binary = e.kind !== 'query';
    if (!shape) {
      if (this.masker.active) return this.upstreamViolation('a row arrived whose columns were not described');
      r.rows++;
      r.bytes += p.payload.length;
      return this.send(e, p.payload, p.raw);
    }
    let out: Buffer;
    try {
      out = binary ? maskBinaryRow(p.payload, shape, shape.messages ? this.messageMask : null) : maskTextRow(p.payload, shape, shape.messages ? this.messageMask : null);
    } catch (err) {
      if (err instanceof RangeError) return this.upstreamViolation(`a row does not match its column definitions (${err.message})`);
      throw err;
    }
    r.rows++;
    r.bytes += out.length;
    if (r.sample === null || r.sample.length < SAMPLE_ROWS) (r.sample ??= []).push(binary ? sampleBinaryRow(out, shape) : sampleTextRow(out, shape.columns.length));
    this.send(e, out, out === p.payload ? p.raw : null);
  }

  private localInfileRequest(e: ResultEntry, p: Packet): void {
    const unit = this.unitOf(e);
    if (e.kind !== 'query' || !unit || unit.context.localInfile !== true) return this.upstreamViolation('upstream asked for a local file the statement in flight did not name');
    e.r.phase = 'infile';
    this.infile = e;
    this.send(e, p.payload, p.raw);
  }

  private cursorOpened(e: ExecuteEntry, p: Packet, status: number): Promise<void> | void {
    if (e.stmt) e.stmt.cursor = e.r.shape;
    return this.statementEnd(e, p, status, 0, false);
  }

  private unitOf(e: ResultEntry): Unit | undefined {
    if (e.kind === 'query') return e.judgement.units[Math.min(e.index, e.judgement.units.length - 1)];
    return e.unit;
  }

  private decisionOf(e: ResultEntry): Decision {
    if (e.kind === 'query') return e.judgement.decisions[Math.min(e.index, e.judgement.decisions.length - 1)];
    return e.decision;
  }

  /**
   * One result (OK, or a result set's terminator) of the command at the head. A CALL in a
   * query sends result sets before its own OK; a prepared CALL and multi-statement queries
   * say MORE_RESULTS_EXISTS.
   */
  private statementEnd(e: ResultEntry, p: Packet, status: number, rows: number, isOk: boolean): Promise<void> | void {
    const r = e.r;
    const unit = this.unitOf(e);
    const more = (status & STATUS.MORE_RESULTS_EXISTS) !== 0;
    const callContinues = e.kind === 'query' && !isOk && unit?.context.kind === 'call';
    if (callContinues || (e.kind === 'execute' && more)) {
      // More result sets of the same statement follow.
      if (!isOk) r.rows = rows;
      const keep = { rows: r.rows, bytes: r.bytes + p.payload.length, sample: r.sample, sampleColumns: r.sampleColumns };
      e.r = { ...newResult(), ...keep };
      return this.send(e, p.payload, p.raw);
    }
    const total = isOk && r.rows === 0 ? rows : r.rows;
    if (unit && isOk) this.afterSuccess(unit);
    const recorded = unit
      ? this.audit.result(unit, this.decisionOf(e), e.startedAt, {
          status: 'OK',
          rows: total,
          bytes: r.bytes + p.payload.length,
          ...(e.kind === 'execute' && e.params.length ? { params: e.params } : {}),
          sample: r.sample && r.sampleColumns ? { columns: r.sampleColumns, rows: r.sample } : null,
        })
      : null;
    const payload = p.payload;
    const raw = p.raw;
    const seq = e.cseq;
    e.cseq += p.parts;
    const release = () => this.release(recorded, () => encode(payload, seq, raw));
    if (e.kind === 'query' && more && e.index + 1 < e.judgement.units.length) {
      e.index++;
      e.startedAt = Date.now();
      e.r = newResult();
      return release();
    }
    if (e.kind === 'query' && more) {
      // More results than statements we counted: keep them on the last one.
      e.r = newResult();
      return release();
    }
    return then(release(), () => this.retire());
  }

  private afterSuccess(unit: Unit): void {
    const use = unit.context.use;
    if (typeof use === 'string') this.database = use;
    const kinds = unit.match.statement;
    if (this.options.catalog && Array.isArray(kinds) && kinds.some((k) => SCHEMA_KINDS.has(k))) this.options.catalog.invalidate();
  }

  private statementError(e: ResultEntry, p: Packet): Promise<void> | void {
    const { payload, err } = maskErr(p.payload, this.masker);
    if (SCHEMA_CHANGED.has(err.code)) this.options.catalog?.invalidate();
    const unit = this.unitOf(e);
    const recs: Recorded[] = [];
    if (unit) {
      recs.push(
        this.audit.result(unit, this.decisionOf(e), e.startedAt, {
          status: err.sqlstate,
          rows: e.r.rows,
          bytes: e.r.bytes + payload.length,
          error: `${err.code} (${err.sqlstate}): ${err.message}`,
          ...(e.kind === 'execute' && e.params.length ? { params: e.params } : {}),
        }),
      );
    }
    if (e.kind === 'query' && e.index + 1 < e.judgement.units.length) recs.push(this.audit.skipped(e.judgement.units, e.judgement.decisions, e.index + 1, e.startedAt));
    const seq = e.cseq;
    e.cseq += p.parts;
    return then(
      this.release(all(recs), () => encode(payload, seq)),
      () => this.retire(),
    );
  }

  private release(recorded: Recorded | null, reply: () => Buffer): Promise<void> | void {
    if (!recorded) return this.pump.toClient(reply());
    return this.audit.release(
      recorded,
      reply,
      (b) => this.pump.toClient(b),
      () => 1,
    );
  }

  private onPrepareResponse(e: PrepareEntry, p: Packet): Promise<void> | void {
    const b = p.payload;
    switch (e.phase) {
      case 'first': {
        if (b[0] === 0xff) {
          this.send(e, maskErr(b, this.masker).payload);
          return this.retire();
        }
        if (b[0] !== 0x00 || b.length < 12) return this.upstreamViolation('unexpected answer to COM_STMT_PREPARE');
        const r = new Reader(b, 1);
        const id = r.u32();
        const columns = r.u16();
        const params = r.u16();
        e.stmt = { id, text: e.text, unit: e.unit, decision: e.decision, params, columns, types: null, longData: new Map(), cursor: null };
        this.stmts.set(id, e.stmt);
        this.send(e, b, p.raw);
        return this.prepareNext(e, 'params', params);
      }
      case 'params':
      case 'columns':
        readColumn(b);
        this.send(e, b, p.raw);
        if (--e.remaining === 0) {
          if (!this.deprecateEof) {
            e.phase = e.phase === 'params' ? 'params-eof' : 'columns-eof';
            return;
          }
          return e.phase === 'params' ? this.prepareNext(e, 'columns', e.stmt?.columns ?? 0) : this.retire();
        }
        return;
      case 'params-eof':
      case 'columns-eof':
        if (!(b[0] === 0xfe && b.length < 9)) return this.upstreamViolation('definitions not followed by EOF in a COM_STMT_PREPARE answer');
        this.send(e, b, p.raw);
        return e.phase === 'params-eof' ? this.prepareNext(e, 'columns', e.stmt?.columns ?? 0) : this.retire();
    }
  }

  private prepareNext(e: PrepareEntry, phase: 'params' | 'columns', n: number): Promise<void> | void {
    if (n > 0) {
      e.phase = phase;
      e.remaining = n;
      return;
    }
    if (phase === 'params') return this.prepareNext(e, 'columns', e.stmt?.columns ?? 0);
    return this.retire();
  }

  private onSimpleResponse(e: SimpleEntry, p: Packet): Promise<void> | void {
    const b = p.payload;
    if (e.internal) {
      if (b[0] !== 0x00 && b[0] !== 0xff) return this.upstreamViolation("unexpected answer to the gateway's own command");
      if (b[0] === 0x00) this.status = readOk(b).status;
      const done = e.internal;
      this.expected.shift();
      done(b);
      return this.flushLocal();
    }
    if (e.reply === 'ok' && b[0] !== 0x00 && b[0] !== 0xff && !(b[0] === 0xfe && b.length < 9))
      return this.upstreamViolation(`unexpected packet 0x${b[0].toString(16)} in answer to a command`);
    let out = b;
    let recorded: Recorded | null = null;
    if (b[0] === 0xff) {
      const m = maskErr(b, this.masker);
      out = m.payload;
      if (e.unit && e.decision)
        recorded = this.audit.result(e.unit, e.decision, e.startedAt, { status: m.err.sqlstate, bytes: out.length, error: `${m.err.code} (${m.err.sqlstate}): ${m.err.message}` });
    } else {
      const ok = b[0] === 0x00 ? readOk(b) : null;
      if (ok) this.status = ok.status;
      e.onOk?.(ok);
      if (e.unit && e.decision) recorded = this.audit.result(e.unit, e.decision, e.startedAt, { status: 'OK', bytes: b.length });
      if (e.reply === 'any' && this.masker.active) out = Buffer.from(this.masker.maskText(b.toString('utf8')), 'utf8');
    }
    const seq = e.cseq;
    e.cseq += p.parts;
    const raw = out === b ? p.raw : null;
    return then(
      this.release(recorded, () => encode(out, seq, raw)),
      () => this.retire(),
    );
  }

  private onFieldListResponse(e: FieldListEntry, p: Packet): Promise<void> | void {
    const b = p.payload;
    e.bytes += b.length;
    if (b[0] === 0xff) {
      const m = maskErr(b, this.masker);
      const recorded = this.audit.result(e.unit, e.decision, e.startedAt, { status: m.err.sqlstate, bytes: e.bytes, error: `${m.err.code} (${m.err.sqlstate}): ${m.err.message}` });
      const seq = e.cseq;
      return then(
        this.release(recorded, () => encode(m.payload, seq)),
        () => this.retire(),
      );
    }
    if (b[0] === 0xfe && (this.deprecateEof ? p.parts === 1 : b.length < 9)) {
      const recorded = this.audit.result(e.unit, e.decision, e.startedAt, { status: 'OK', bytes: e.bytes });
      const seq = e.cseq;
      return then(
        this.release(recorded, () => encode(b, seq, p.raw)),
        () => this.retire(),
      );
    }
    const col = readColumn(b);
    // Column defaults can quote values: for a masked caller the definition's default is dropped.
    const out = this.masker.active ? stripDefault(b) : b;
    void col;
    this.send(e, out, out === b ? p.raw : null);
  }

  // -------------------------------------------------------------------------------------
  // Ways a session ends

  private framingError(side: Side, e: PacketFramingError): void {
    if (side === 'upstream') return this.fatal(`upstream sent a packet of ${e.length} bytes (over max_result_message_bytes)`);
    this.protocolError(`packet of ${e.length} bytes exceeds max_message_bytes`, 1153, '08S01');
  }

  /** A caller packet we refuse: audited, answered with an ERR, connection closed. */
  private protocolError(message: string, code = 1047, sqlstate = '08S01'): void {
    void this.session.protocolError(message, { code, sqlstate });
    this.pump.toClient(encode(errPayload(code, sqlstate, `gatehouse: ${message}; session closed`), 1));
    this.pump.close(`protocol error: ${message}`, true);
  }

  /** The upstream sent something that does not fit where we are: nothing more is relayed. */
  private upstreamViolation(message: string): void {
    void this.session.protocolError(`upstream: ${message}`, { code: 2027, sqlstate: '08S01' });
    this.fatal(`protocol error: ${message}; session closed`);
  }

  private fatal(message: string, e?: Error): void {
    this.options.log.error({ err: e?.message }, message);
    const head = this.expected[0];
    if (!this.pump.closed) this.pump.toClient(encode(errPayload(2013, 'HY000', `gatehouse: ${message}`), head ? head.cseq : 1));
    this.pump.close(message, true);
  }
}

interface ChangeUserState {
  user: string;
  db: string;
  seq: number;
  scramble: Buffer;
  step: 'switch' | 'full';
}

function lenencSize(n: number): number {
  return n < 0xfb ? 1 : n < 0x10000 ? 3 : n < 0x1000000 ? 4 : 9;
}

/** A COM_FIELD_LIST column definition without its default value (the trailing length-encoded string). */
function stripDefault(b: Buffer): Buffer {
  const r = new Reader(b);
  for (let i = 0; i < 6; i++) r.lenencBytes();
  const fixed = r.lenencInt();
  r.bytes(fixed);
  if (r.left === 0) return b;
  const out = Buffer.concat([b.subarray(0, r.pos), Buffer.from([0xfb])]);
  return out;
}

export type { FetchEntry };
