/**
 * Shared vocabulary of Gatehouse. Every package speaks these types; none of them
 * carries behaviour, so any package may import them without pulling in another's code.
 */

/** Who is calling. Produced only by packages/identity from a verified token. */
export interface Identity {
  /** `sub` of the token (or the static token's subject). */
  subject: string;
  /** `iss` of the token; `static` for development tokens. */
  issuer: string;
  groups: string[];
  /** Verified claims, for CEL conditions. Never contains the raw token. */
  claims: Record<string, unknown>;
  /**
   * When the credential stops being accepted (JWT `exp` plus the issuer's clock tolerance, a
   * certificate's notAfter), ms since the epoch; absent for credentials that do not expire
   * (static development tokens, bound SSH keys). A Session refuses every unit past it.
   */
  expiresAt?: number;
}

/**
 * A client certificate the TLS layer has already verified against the connector's CA
 * (`tls.client_auth`). Only the fields identity mapping needs; never the whole chain.
 */
export interface ClientCertificate {
  /** Subject common name; absent when the subject has none, or more than one. */
  subjectCN?: string;
  /** `URI:` subject alternative names (SPIFFE IDs and the like), in certificate order. */
  sanURIs: string[];
  /** SHA-256 fingerprint of the DER certificate, upper-case hex with colons (Node's form). */
  fingerprint256: string;
  /** End of validity (`notAfter`), seconds since the epoch: a longer-lived session is re-checked then. */
  notAfter?: number;
}

/**
 * A signature over SSH user-authentication data, as the SSH library hands it over: either
 * the SSH wire form (`string algorithm, string signature blob`), or the bare signature with
 * its algorithm (`ssh-ed25519`: 64 bytes; `ssh-rsa`: PKCS#1 v1.5 with `hash` sha256/sha512;
 * `ecdsa-sha2-*`: DER-encoded (r, s)).
 */
export type SshSignature = { wire: Buffer } | { algorithm: string; bytes: Buffer; hash?: string };

/**
 * An SSH public key or OpenSSH certificate a caller offers (`identity.ssh_keys`,
 * `identity.ssh_user_ca`). With `proof` the caller signed `data` with the key's private half
 * and the key is verified before it names anyone; without it, it is a query ("would this key
 * do?", RFC 4252 §7) that never authenticates.
 */
export interface SshKeyCredential {
  /** Public-key algorithm of the request: `ssh-ed25519`, `rsa-sha2-256`, `ssh-ed25519-cert-v01@openssh.com`, … */
  algo: string;
  /** The public key or certificate, SSH wire format. */
  blob: Buffer;
  proof: { data: Buffer; signature: SshSignature } | null;
  /** The caller's address (a certificate's `source-address` option is checked against it). */
  address: string;
}

/** An error as a value at a boundary (no exceptions across package seams). */
export type Result<T, E = GatehouseError> = { ok: true; value: T } | { ok: false; error: E };

export interface GatehouseError {
  /** Stable machine-readable code, e.g. `auth.expired`, `policy.denied`, `audit.unavailable`. */
  code: string;
  /** Human-readable message, safe to show to the caller (never holds a secret). */
  message: string;
}

export const ok = <T>(value: T): Result<T, never> => ({ ok: true, value });
export const err = (code: string, message: string): Result<never> => ({ ok: false, error: { code, message } });

export type Action = 'allow' | 'deny' | 'review';

export interface Decision {
  action: Action;
  /** Name of the rule that decided; absent when the default (allow) applied. */
  rule?: string;
  /** Why, in words fit for the caller's error message. */
  reason?: string;
}

/**
 * One unit of work, protocol-neutral: a SQL statement, an HTTP request, an SSH command.
 *
 * `match` holds the flat attributes that rule `match:` blocks compare against
 * (e.g. `{ statement: 'delete', tables: ['public.t'], where: 'absent' }` or
 * `{ method: 'DELETE', path: '/v1/customers/7' }`). `context` is what CEL `when:`
 * expressions see under `contextName` (`statement`, `request`, `command`).
 */
export interface Unit {
  /** `statement` | `request` | `command` — also the CEL variable name for `context`. */
  type: 'statement' | 'request' | 'command';
  /** The payload as text: SQL, `METHOD /path?query`, the command line. */
  text: string;
  match: Record<string, string | string[] | undefined>;
  context: Record<string, unknown>;
}

/** Response metadata of a unit, as far as the connector knows it. */
export interface UnitResult {
  /** Protocol status: SQL command tag / SQLSTATE, HTTP status, exit code. */
  status?: string | number;
  rows?: number;
  bytes?: number;
  durationMs?: number;
  error?: string;
}

/**
 * `approval.*`: the life of a review request (requested, approved — one per approving vote —,
 * denied, expired, cancelled, used) and of a time-window grant (granted); see docs/approvals.md.
 */
export type ApprovalEventKind = 'approval.requested' | 'approval.approved' | 'approval.denied' | 'approval.expired' | 'approval.cancelled' | 'approval.used' | 'approval.granted';

export type AuditEventKind = 'session.start' | 'session.end' | 'auth.failure' | 'unit' | 'protocol.error' | ApprovalEventKind;

/**
 * What a connector (through its Session) hands to the audit log. The writer adds
 * `seq`, `prev` and `hash`; nothing else is changed after this point.
 */
export interface AuditEventInput {
  /** RFC 3339 time the unit started (or the session event happened). */
  time: string;
  kind: AuditEventKind;
  connector: string;
  /** Connector type: postgres | mysql | ssh | http. */
  protocol: string;
  session: string;
  identity: { subject: string; issuer: string; groups: string[] } | null;
  /** The unit as the caller sent it, parameters already masked. */
  unit?: { type: Unit['type']; text: string; params?: unknown[]; attributes?: Record<string, unknown> };
  decision?: Decision;
  result?: UnitResult;
  /** Peer address, claimed user name, TLS, reason for a failure, … */
  meta?: Record<string, unknown>;
}

/** A stored event as read back (export, API). */
export interface AuditEvent extends AuditEventInput {
  seq: number;
  /** Hex SHA-256 of the previous event's hash (all zeroes for seq 1). */
  prev: string;
  /** Hex SHA-256 over the canonical encoding of this event (see packages/audit). */
  hash: string;
}
