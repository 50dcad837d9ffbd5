/**
 * The seams between the core Session and the packages that implement its parts.
 * The gateway wires implementations in; connectors only ever see a Session.
 */
import type { AuditEventInput, ClientCertificate, Decision, GatehouseError, Identity, Result, SshKeyCredential, Unit } from './types.js';
import type { GroupSelector } from './config/types.js';

/** packages/audit behind a narrow door. */
export interface AuditSink {
  /**
   * Append one event. Resolves with its sequence number once it is durable as the
   * configured durability promises (strict: fsynced; batched: accepted, fsynced within
   * the window). Rejects when the log cannot take it — the caller must fail closed.
   */
  append(event: AuditEventInput): Promise<number>;
  /**
   * `batched` only: append without waiting for (or allocating) an acknowledgement. A write
   * that fails later sets `failure`, which refuses all further work. Optional: without it
   * the Session uses `append` and ignores the promise.
   */
  appendDetached?(event: AuditEventInput): void;
  /** Non-null once the log has failed; every new unit of work is refused meanwhile. */
  readonly failure: GatehouseError | null;
  readonly durability: 'strict' | 'batched';
}

/** packages/identity: a token in, an Identity (or a reason) out. */
export interface Authenticator {
  authenticate(token: string): Promise<Result<Identity>>;
  /**
   * Map a client certificate the TLS layer already verified to an identity (issuer `mtls`).
   * Optional: an authenticator without it accepts no certificate.
   */
  authenticateCertificate?(cert: ClientCertificate): Promise<Result<Identity>>;
  /**
   * Map an SSH public key bound to an identity (`identity.ssh_keys`, issuer `ssh-key`) or an
   * OpenSSH user certificate signed by a configured CA (`identity.ssh_user_ca`, issuer
   * `ssh-cert`) to an identity, after checking the caller's signature (`proof`). Without a
   * proof it only answers whether the key would be accepted. Optional: an authenticator
   * without it accepts no SSH key.
   */
  authenticateSshKey?(key: SshKeyCredential): Promise<Result<Identity>>;
}

/** packages/policy compiled for one connector. Synchronous: it is on the hot path. */
export interface PolicyEngine {
  decide(unit: Unit, identity: Identity, connector: { name: string; type: string }): Decision;
}

/**
 * Masks one value (text form). Returns the input itself when nothing matched, so a
 * caller can tell "unchanged" by identity; null means "replace with NULL".
 */
export type ValueMask = (value: string) => string | null;

export interface ColumnMaskPlan {
  /** One entry per result column; null where the column passes through untouched. */
  columns: (ValueMask | null)[];
  /** False when every entry is null: the connector may forward rows without looking. */
  any: boolean;
}

/**
 * Where a result column comes from, when the protocol says (PostgreSQL RowDescription table
 * OID + attribute number resolved through the catalog; MySQL `org_table`/`org_name`).
 * Masking keys on this, not on the output name, so an alias never matters.
 */
export interface ColumnOrigin {
  schema: string;
  table: string;
  column: string;
}

/** packages/masking, already resolved for one identity (group exemptions applied). */
export interface Masker {
  /** False when no masking rule applies to this identity at all. */
  readonly active: boolean;
  /**
   * One mask per result column. `origins[i]`, when known, decides column rules
   * (`column`, `table.column`, `schema.table.column`); a one-part rule also matches the
   * output name, so an expression labelled like a masked column stays masked.
   */
  planColumns(names: readonly string[], origins?: readonly (ColumnOrigin | null)[]): ColumnMaskPlan;
  /**
   * The configured column rule (as written) that could mask a column with this bare name in
   * some table, or null. Restricted SQL uses it to refuse expressions over masked columns.
   */
  maskedColumn?(name: string): string | null;
  /** The configured column rule masking this exact origin, or null. */
  maskedOrigin?(origin: ColumnOrigin): string | null;
  /** Detector-based masking of free text. */
  maskText(text: string): string;
  /** JSON-path rules and detectors over a parsed JSON value. */
  maskJson(value: unknown): { value: unknown; changed: boolean };
}

export interface MaskingEngine {
  forIdentity(identity: Identity): Masker;
}

/** One entry of a session timeline (packages/recording). */
export interface TimelineEntry {
  /** Milliseconds since the session started. */
  t: number;
  type: string;
  text?: string;
  decision?: Decision['action'];
  rule?: string;
  status?: string | number;
  rows?: number;
  bytes?: number;
  durationMs?: number;
  error?: string;
  /** Masked sample rows / bodies, already capped by the connector. */
  sample?: unknown;
  /** Terminal output (asciicast) and the like: raw data, already masked. */
  data?: string;
}

export interface SessionRecording {
  append(entry: TimelineEntry): void;
  close(): Promise<void>;
}

export interface Recorder {
  open(sessionId: string, header: Record<string, unknown>): SessionRecording;
}

/** One authenticated session, as the shared session directory lists it. */
export interface SessionEntry {
  id: string;
  connector: string;
  protocol: string;
  subject: string;
  issuer: string;
  /** `address:port` of the caller. */
  peer: string;
  /** ms since the epoch. */
  startedAt: number;
}

/**
 * An index of sessions shared by the gateways of one deployment (their PostgreSQL), so that
 * any gateway's admin API lists every gateway's sessions. Written once when a session starts
 * and once when it ends, never per unit, and never waited for: the audit log is the record
 * of truth, this is a directory of it.
 */
export interface SessionDirectory {
  opened(entry: SessionEntry): void;
  closed(id: string, reason: string, units: number): void;
}

/** Counters the gateway exports on /metrics; connectors reach them through the Session. */
export interface SessionMetrics {
  sessionOpened(connector: string): void;
  sessionClosed(connector: string): void;
  authFailure(connector: string, code: string): void;
  unit(connector: string, action: Decision['action'], durationMs: number): void;
}

/** The logging surface (pino-compatible) every package may use. Never log secrets. */
export interface Logger {
  debug(obj: object | string, msg?: string): void;
  info(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
  child(bindings: Record<string, unknown>): Logger;
}

export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return silentLogger;
  },
};

/** How one connector's reviewed units are settled (`review:` of the connector, durations in ms). */
export interface ReviewPolicy {
  /** Who may approve or deny (and grant) for this connector. */
  reviewers: GroupSelector;
  /** `hold`: the unit waits for the verdict; `reject`: refused now, runs once on retry after approval. */
  mode: 'hold' | 'reject';
  /** hold: longest wait; reject: how long a request stays open, and an approval usable. */
  timeoutMs: number;
  /** Distinct reviewers who must approve. */
  required: number;
}

/** One unit a `review` rule stopped, as the Session hands it to the approvals service. */
export interface ReviewRequest {
  connector: { name: string; type: string };
  session: string;
  identity: Identity;
  rule: string;
  policy: ReviewPolicy;
  unit: {
    type: Unit['type'];
    /** The exact text: what the approval binds to (hashed, never shown). */
    text: string;
    /** The text as the audit would show it (masked for a masked caller). */
    shown: string;
    /** Hex SHA-256 of the unit's parameters / body, where the connector has them at judge time. */
    paramsHash?: string;
  };
}

/** A held unit, reported to the connector so that it can tell the caller and keep the connection alive. */
export interface HoldNotice {
  id: string;
  /** Milliseconds until the request expires. */
  remainingMs: number;
  /** True for the first notice of a request; later ones are keep-alives. */
  first: boolean;
}

export interface ReviewOptions {
  /** Aborted when the caller goes away: a held request is then cancelled (audited). */
  signal?: AbortSignal;
  /** Called when the unit starts to wait, then every few seconds while it waits. */
  onHold?: (notice: HoldNotice) => void;
  /** Hex SHA-256 of parameters / body bound into the request (see ReviewRequest.unit). */
  paramsHash?: string;
}

/** packages/approvals: settles a `review` decision into allow or deny. Never throws; fails closed. */
export interface Approvals {
  review(request: ReviewRequest, options: Pick<ReviewOptions, 'signal' | 'onHold'>): Promise<Decision>;
}
