/**
 * The Session: the one object a connector talks to for a caller's connection.
 * Connectors parse frames; the Session decides, masks and records. It owns no socket.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { GroupSelector } from './config/types.js';
import type {
  Approvals,
  AuditSink,
  Authenticator,
  Logger,
  Masker,
  MaskingEngine,
  PolicyEngine,
  Recorder,
  ReviewOptions,
  ReviewPolicy,
  SessionDirectory,
  SessionMetrics,
  SessionRecording,
} from './engines.js';
import { err, ok, type AuditEventInput, type ClientCertificate, type Decision, type Identity, type Result, type SshKeyCredential, type Unit, type UnitResult } from './types.js';
import { matchesSelector } from './selectors.js';

/** Everything a Session needs, wired by the gateway once per connector. */
export interface SessionServices {
  connector: { name: string; type: string };
  allow: GroupSelector[];
  audit: AuditSink;
  authenticator: Authenticator;
  policy: PolicyEngine;
  masking: MaskingEngine;
  recorder: Recorder | null;
  metrics: SessionMetrics | null;
  logger: Logger;
  /** The approvals service; absent or null: reviewed units are refused naming the rule. */
  approvals?: Approvals | null;
  /** The connector's `review:` block; absent or null: reviewed units are refused naming the rule. */
  review?: ReviewPolicy | null;
  /** The deployment's shared session directory; absent or null when there is none. */
  directory?: SessionDirectory | null;
}

export interface PeerInfo {
  /** Remote address and port of the caller. */
  address: string;
  port: number;
  tls: boolean;
  /** User name the caller claimed in its protocol (kept for the audit, never trusted). */
  claimedUser?: string;
  /** Anything else the connector knows: database, application_name, user agent… */
  meta?: Record<string, unknown>;
}

/** What a connector reports about one finished unit of work. */
export interface UnitRecord {
  unit: Unit;
  decision: Decision;
  /** Date.now() when the unit arrived. */
  startedAt: number;
  result: UnitResult;
  /** Bound parameters, as text, before masking (the Session masks them). */
  params?: unknown[];
  /** Masked sample of what came back, already capped, for the timeline. */
  sample?: unknown;
  /**
   * Extra audit-only attributes of the unit (already masked by the connector), merged over
   * `unit.match` in the event: request headers, a body sample, the upstream address…
   */
  attributes?: Record<string, unknown>;
}

const NO_MASKING: Masker = {
  active: false,
  planColumns: (names) => ({ columns: names.map(() => null), any: false }),
  maskText: (t) => t,
  maskJson: (value) => ({ value, changed: false }),
};

/**
 * The decisions for the units of one message (a multi-statement query, a request): one
 * refusal refuses them all, because a protocol cannot run half of what it was sent.
 */
export interface Judgement {
  units: readonly Unit[];
  /** One per unit (allow decisions keep the allowing rule for the audit). */
  decisions: Decision[];
  /** The first refusal, if any. */
  deny: Decision | null;
  /** Index of the refused unit, -1 if none. */
  denyIndex: number;
}

/**
 * A connector's own objection to a unit the rules allowed (e.g. restricted SQL for a masked
 * caller): a deny decision, or null.
 */
export type Veto = (unit: Unit) => Decision | null;

export interface JudgeOptions extends Omit<ReviewOptions, 'paramsHash'> {
  /**
   * Leave `review` decisions unsettled (deny stays null, the decision stays `review`): the
   * connector settles them with review() once it knows the unit's parameters — a prepared
   * statement is reviewed at its Bind / execute, so that an approval covers the values it
   * runs with, not only its text. Nothing of a unit may be executed before that.
   */
  deferReview?: boolean;
}

/**
 * `Session.record()`'s answer: synchronous when the audit promises durability within a
 * window (`batched`: reply at once), a promise when the reply must wait for it (`strict`).
 * Connectors never need to know which durability is configured.
 */
export type Recorded = Result<void> | Promise<Result<void>>;

export class Session {
  readonly id = randomUUID();
  readonly startedAt = Date.now();
  private identity_: Identity | null = null;
  /** Masking resolved for this caller; replaced at authentication. */
  private masker_: Masker = NO_MASKING;
  private recording: SessionRecording | null = null;
  private units = 0;
  private ended = false;
  /** Identity.expiresAt, or Infinity: checked by decide() for every unit. */
  private expiresAtMs = Infinity;
  private readonly log: Logger;
  /** Aborted at end(): a unit still held for approval is cancelled with the session. */
  private readonly closing = new AbortController();

  constructor(
    private readonly services: SessionServices,
    readonly peer: PeerInfo,
  ) {
    this.log = services.logger.child({ session: this.id });
  }

  /** The authenticated caller, or null before authentication. */
  get identity(): Identity | null {
    return this.identity_;
  }

  /** The masking that applies to this caller (inactive until authenticated, or when no rule applies). */
  get masker(): Masker {
    return this.masker_;
  }

  /**
   * Verify the caller's token, check the connector's allow list, and record the
   * outcome. On success the Session is bound to the identity for its lifetime.
   */
  async authenticate(token: string): Promise<Result<Identity>> {
    const { audit, authenticator } = this.services;
    if (audit.failure) return err('audit.unavailable', 'audit log unavailable; gateway refuses new sessions');
    return this.bind(await authenticator.authenticate(token), null);
  }

  /**
   * Like `authenticate`, for a client certificate the TLS layer already verified against the
   * connector's CA: mapped to an identity by the authenticator, then the same allow-list
   * check and audit events. The certificate's names and fingerprint go into the events' meta.
   */
  async authenticateCertificate(cert: ClientCertificate): Promise<Result<Identity>> {
    const { audit, authenticator } = this.services;
    if (audit.failure) return err('audit.unavailable', 'audit log unavailable; gateway refuses new sessions');
    const certificate = { ...(cert.subjectCN !== undefined ? { cn: cert.subjectCN } : {}), uris: cert.sanURIs, fingerprint256: cert.fingerprint256 };
    const verified = authenticator.authenticateCertificate
      ? await authenticator.authenticateCertificate(cert)
      : err('auth.certificate', 'client certificates are not accepted by this gateway');
    return this.bind(verified, { certificate });
  }

  /**
   * Like `authenticate`, for an SSH public key or OpenSSH user certificate (the SSH
   * connector): verified and mapped by the authenticator, then the same allow-list check and
   * audit events, whose meta carry `ssh: {method, algorithm, fingerprint}` and, for a
   * certificate, its serial, key id and CA fingerprint. A key without `proof` is a query:
   * the answer says whether the key would identify someone; nothing is bound or audited.
   */
  async authenticateSshKey(key: SshKeyCredential): Promise<Result<Identity>> {
    const { audit, authenticator } = this.services;
    if (audit.failure) return err('audit.unavailable', 'audit log unavailable; gateway refuses new sessions');
    const verified = authenticator.authenticateSshKey ? await authenticator.authenticateSshKey(key) : err('auth.ssh_key', 'SSH keys are not accepted by this gateway');
    if (key.proof === null) return verified;
    const certificate = key.algo.includes('-cert-v01@openssh.com');
    const claims = verified.ok ? verified.value.claims : {};
    const ssh = {
      method: certificate ? 'certificate' : 'publickey',
      algorithm: key.algo,
      fingerprint: `SHA256:${createHash('sha256').update(key.blob).digest('base64').replace(/=+$/, '')}`,
      ...(claims.serial !== undefined ? { serial: claims.serial } : {}),
      ...(claims.key_id !== undefined ? { keyId: claims.key_id } : {}),
      ...(claims.ca_fingerprint !== undefined ? { ca: claims.ca_fingerprint } : {}),
    };
    return this.bind(verified, { ssh });
  }

  /** The one path after verification: allow list, audit event, masking, recording. */
  private async bind(verified: Result<Identity>, credentialMeta: Record<string, unknown> | null): Promise<Result<Identity>> {
    const { connector, allow, masking, metrics, recorder } = this.services;
    let failure = verified.ok ? null : verified.error;
    if (verified.ok && !allow.some((sel) => matchesSelector(sel, verified.value))) {
      failure = { code: 'auth.forbidden', message: `identity ${verified.value.subject} may not use connector ${connector.name}` };
    }
    if (failure) {
      metrics?.authFailure(connector.name, failure.code);
      this.log.warn({ code: failure.code, peer: this.peer.address, claimedUser: this.peer.claimedUser }, 'authentication failed');
      const written = await this.append({
        kind: 'auth.failure',
        identity: verified.ok ? pickIdentity(verified.value) : null,
        meta: { ...this.peerMeta(), ...credentialMeta, code: failure.code, reason: failure.message },
      });
      if (!written.ok) return written;
      return { ok: false, error: failure };
    }
    const identity = (verified as { ok: true; value: Identity }).value;
    this.identity_ = identity;
    this.expiresAtMs = identity.expiresAt ?? Infinity;
    this.masker_ = masking.forIdentity(identity);
    const written = await this.append({ kind: 'session.start', meta: credentialMeta ? { ...this.peerMeta(), ...credentialMeta } : this.peerMeta() });
    if (!written.ok) {
      this.identity_ = null;
      return written;
    }
    metrics?.sessionOpened(connector.name);
    this.services.directory?.opened({
      id: this.id,
      connector: connector.name,
      protocol: connector.type,
      subject: identity.subject,
      issuer: identity.issuer,
      peer: `${this.peer.address}:${this.peer.port}`,
      startedAt: this.startedAt,
    });
    this.recording =
      recorder?.open(this.id, {
        connector: connector.name,
        protocol: connector.type,
        subject: identity.subject,
        peer: this.peer.address,
        started: new Date(this.startedAt).toISOString(),
      }) ?? null;
    this.log.info({ subject: identity.subject, peer: this.peer.address }, 'session started');
    return ok(identity);
  }

  /**
   * Judge one unit. Synchronous and allocation-light: it runs for every statement.
   * A `review` decision must be passed to `review()` before anything is forwarded.
   */
  decide(unit: Unit): Decision {
    if (!this.identity_) return { action: 'deny', rule: 'unauthenticated', reason: 'session is not authenticated' };
    // A long-lived connection outlives its token: past `exp` (or a certificate's notAfter)
    // nothing more is allowed on it; the caller reconnects with a fresh credential.
    if (this.expiresAtMs <= Date.now()) {
      return { action: 'deny', rule: 'credential-expired', reason: `the caller's credential expired at ${new Date(this.expiresAtMs).toISOString()}; reconnect with a fresh one` };
    }
    if (this.services.audit.failure) {
      return { action: 'deny', rule: 'audit-unavailable', reason: 'audit log unavailable; request refused' };
    }
    return this.services.policy.decide(unit, this.identity_, this.services.connector);
  }

  /**
   * Decide every unit of one message, settle `review` decisions, and apply the connector's
   * `veto` to what the rules allowed. Synchronous unless a review has to wait. The first
   * refusal refuses the message; nothing of it may be forwarded.
   */
  judge(units: readonly Unit[], veto: Veto | null = null, options: JudgeOptions = {}): Judgement | Promise<Judgement> {
    const decisions = new Array<Decision>(units.length);
    let review = false;
    for (let i = 0; i < units.length; i++) {
      let d = this.decide(units[i]);
      if (veto && d.action !== 'deny') d = veto(units[i]) ?? d;
      decisions[i] = d;
      if (d.action === 'review') review = true;
    }
    if (!review) return settle(units, decisions);
    // A hard refusal anywhere refuses the message: nobody needs to be asked about the rest.
    const hard = decisions.findIndex((d) => d.action === 'deny');
    if (hard >= 0) return { units, decisions, deny: decisions[hard], denyIndex: hard };
    if (options.deferReview) return { units, decisions, deny: null, denyIndex: -1 };
    return this.settleReviews(units, decisions, options);
  }

  /**
   * Settle the `review` decisions of a message in order (judge() does it, or a connector
   * later for a judgement it deferred, with the parameters' hash); the first refusal refuses
   * the message and nobody is asked about the rest.
   */
  async settleReviews(units: readonly Unit[], decisions: readonly Decision[], options: ReviewOptions = {}): Promise<Judgement> {
    const settled = decisions.slice();
    for (let i = 0; i < units.length; i++) {
      if (settled[i].action === 'review') settled[i] = await this.review(units[i], settled[i], options);
      if (settled[i].action === 'deny') break;
    }
    return settle(units, settled);
  }

  /**
   * Settle a `review` decision through the approvals service: allow (approved, granted) or
   * deny naming the rule and, once one exists, the request. Without a service or a `review:`
   * block on the connector the unit is refused naming the rule (documented default). Never
   * rejects: a failure of the approvals service is a refusal (fail closed).
   */
  async review(unit: Unit, decision: Decision, options: ReviewOptions = {}): Promise<Decision> {
    const rule = decision.rule ?? 'review';
    const { approvals, review, connector } = this.services;
    const identity = this.identity_;
    if (!approvals || !review || !identity) {
      return { action: 'deny', rule, reason: `requires approval by rule "${rule}"; connector ${connector.name} has no reviewers (no review block)` };
    }
    if (this.ended) return { action: 'deny', rule, reason: 'session ended' };
    const m = this.masker_;
    const signal = options.signal ? AbortSignal.any([options.signal, this.closing.signal]) : this.closing.signal;
    try {
      return await approvals.review(
        {
          connector,
          session: this.id,
          identity,
          rule,
          policy: review,
          unit: { type: unit.type, text: unit.text, shown: m.active ? m.maskText(unit.text) : unit.text, ...(options.paramsHash ? { paramsHash: options.paramsHash } : {}) },
        },
        { signal, ...(options.onHold ? { onHold: options.onHold } : {}) },
      );
    } catch (e) {
      this.log.error({ err: (e as Error).message }, 'approvals failed; unit refused');
      return { action: 'deny', rule, reason: `requires approval by rule "${rule}"; the approval service is unavailable` };
    }
  }

  /**
   * Record a finished (or refused) unit: one audit event and one timeline entry.
   * Resolves once the event is as durable as `audit.durability` promises; an error
   * result means the audit write failed and the connector must fail the unit.
   */
  record(r: UnitRecord): Recorded {
    this.units++;
    const { metrics, connector } = this.services;
    const durationMs = r.result.durationMs ?? Date.now() - r.startedAt;
    metrics?.unit(connector.name, r.decision.action, durationMs);
    const m = this.masker_;
    // What goes to data_dir is what a masked caller may see: statement text and errors can
    // quote values (literals, error messages); parameters, samples and attributes too.
    const text = m.active ? m.maskText(r.unit.text) : r.unit.text;
    const error = m.active && r.result.error !== undefined ? m.maskText(r.result.error) : r.result.error;
    const params = r.params && m.active ? (maskStrings(r.params, m) as unknown[]) : r.params;
    const sample = r.sample !== undefined && m.active ? maskStrings(r.sample, m) : r.sample;
    const attributes = r.attributes && m.active ? (maskStrings(r.attributes, m) as Record<string, unknown>) : r.attributes;
    const decision: Decision = r.decision.rule ? { action: r.decision.action, rule: r.decision.rule } : { action: r.decision.action };
    this.recording?.append({
      t: r.startedAt - this.startedAt,
      type: r.unit.type,
      text,
      decision: r.decision.action,
      rule: r.decision.rule,
      status: r.result.status,
      rows: r.result.rows,
      bytes: r.result.bytes,
      durationMs,
      error,
      sample,
    });
    // Built by assignment: a conditional or second spread takes V8's slow property-definition
    // runtime path, and this runs for every unit (about half of record()'s own time in a profile).
    const unit: NonNullable<AuditEventInput['unit']> = { type: r.unit.type, text, attributes: attributes ? Object.assign({ ...r.unit.match }, attributes) : r.unit.match };
    if (params) unit.params = params;
    const result: UnitResult = { ...r.result, durationMs };
    if (error !== undefined) result.error = error;
    return this.append({ kind: 'unit', time: new Date(r.startedAt).toISOString(), unit, decision, result });
  }

  /** A frame or request the connector could not parse: audited, then the connector refuses it. */
  async protocolError(message: string, meta: Record<string, unknown> = {}): Promise<Result<void>> {
    this.log.warn({ peer: this.peer.address, ...meta }, `protocol error: ${message}`);
    return this.append({ kind: 'protocol.error', meta: { ...this.peerMeta(), ...meta, error: message } });
  }

  /** Close the session: end event, timeline closed. Idempotent. */
  async end(reason = 'closed'): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    this.closing.abort();
    if (!this.identity) return; // never started: auth.failure (if any) was recorded already
    this.services.metrics?.sessionClosed(this.services.connector.name);
    await this.append({ kind: 'session.end', meta: { reason, units: this.units, durationMs: Date.now() - this.startedAt } });
    this.services.directory?.closed(this.id, reason, this.units);
    await this.recording?.close();
    this.log.info({ reason, units: this.units }, 'session ended');
  }

  private peerMeta(): Record<string, unknown> {
    const p = this.peer;
    return { peer: `${p.address}:${p.port}`, tls: p.tls, ...(p.claimedUser ? { claimedUser: p.claimedUser } : {}), ...p.meta };
  }

  private append(e: Partial<AuditEventInput> & Pick<AuditEventInput, 'kind'>): Recorded {
    const event: AuditEventInput = {
      time: e.time ?? new Date().toISOString(),
      kind: e.kind,
      connector: this.services.connector.name,
      protocol: this.services.connector.type,
      session: this.id,
      identity: e.identity !== undefined ? e.identity : this.identity_ ? pickIdentity(this.identity_) : null,
    };
    // Assigned, not spread conditionally (see record()).
    if (e.unit) event.unit = e.unit;
    if (e.decision) event.decision = e.decision;
    if (e.result) event.result = e.result;
    if (e.meta) event.meta = e.meta;
    const { audit } = this.services;
    if (audit.failure) return AUDIT_UNAVAILABLE;
    if (audit.durability === 'batched') {
      // `batched` promises durability within window_ms, not before the reply: do not wait for
      // the writer's acknowledgement. A write that fails later sets audit.failure, which
      // refuses all further work (decide, authenticate), so nothing proceeds unaudited for long.
      if (audit.appendDetached) audit.appendDetached(event);
      else audit.append(event).catch(this.onLateAuditFailure);
      return RECORDED;
    }
    return audit.append(event).then(
      () => RECORDED,
      (err: Error) => {
        this.log.error({ err: err.message }, 'audit append failed; refusing work');
        return AUDIT_UNAVAILABLE;
      },
    );
  }

  private readonly onLateAuditFailure = (e: Error) => {
    this.log.error({ err: e.message }, 'batched audit append failed; the gateway now refuses work');
  };
}

/** Shared, frozen results: the per-unit path allocates none. */
const RECORDED: Result<void> = Object.freeze({ ok: true, value: undefined });
const AUDIT_UNAVAILABLE: Result<void> = Object.freeze(err('audit.unavailable', 'audit log unavailable; request refused'));

function settle(units: readonly Unit[], decisions: Decision[]): Judgement {
  for (let i = 0; i < decisions.length; i++) {
    if (decisions[i].action !== 'allow') return { units, decisions, deny: decisions[i], denyIndex: i };
  }
  return { units, decisions, deny: null, denyIndex: -1 };
}

/** Every string inside a JSON-like value through the caller's detectors (copy only where changed). */
function maskStrings(v: unknown, m: Masker, depth = 0): unknown {
  if (typeof v === 'string') return m.maskText(v);
  if (v === null || typeof v !== 'object' || depth > 32) return v;
  if (Array.isArray(v)) {
    let out: unknown[] | null = null;
    for (let i = 0; i < v.length; i++) {
      const x = maskStrings(v[i], m, depth + 1);
      if (x !== v[i]) (out ??= v.slice())[i] = x;
    }
    return out ?? v;
  }
  let out: Record<string, unknown> | null = null;
  for (const k of Object.keys(v)) {
    const x = maskStrings((v as Record<string, unknown>)[k], m, depth + 1);
    if (x !== (v as Record<string, unknown>)[k]) (out ??= { ...(v as Record<string, unknown>) })[k] = x;
  }
  return out ?? v;
}

function pickIdentity(i: Identity) {
  return { subject: i.subject, issuer: i.issuer, groups: i.groups };
}
