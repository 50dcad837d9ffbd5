/** The configuration as validated (YAML key names kept as they are written). */

export interface GroupSelector {
  groups?: string[];
  subjects?: string[];
}

export interface RuleConfig {
  name: string;
  /** Attribute → accepted values; see packages/policy for the matching semantics. */
  match?: Record<string, string | string[]>;
  /** CEL expression over identity, connector and the unit (statement / request / command). */
  when?: string;
  action: 'allow' | 'deny' | 'review';
}

export interface MaskingRuleConfig {
  columns?: string[];
  json?: string[];
  detectors?: string[];
  with: 'redact' | 'last4' | 'hash' | 'null' | 'email';
  /** Applies only to callers in these groups / subjects (default: everyone). */
  applies_to?: GroupSelector;
  /** Callers in these groups / subjects see clear values. */
  exempt?: GroupSelector;
}

export interface TlsConfig {
  /** PEM certificate chain file; always together with `key`. */
  cert?: string;
  key?: string;
  /** CA that signs client certificates; always together with `client_auth: true`. */
  ca?: string;
  /** Accept only clients presenting a certificate signed by `ca`. */
  client_auth?: boolean;
}

/**
 * The keys every connector has. A connector package extends this with its own keys and
 * narrows `type` (e.g. `PostgresConnectorConfig` in @gatehouse/connector-postgres); the
 * loader has validated those keys against that package's schema.
 */
export interface ConnectorConfig {
  name: string;
  /** The `type` of the ConnectorModule that validated (and will serve) this connector. */
  type: string;
  listen: string;
  tls?: TlsConfig;
  allow: GroupSelector[];
  rules: RuleConfig[];
  masking: MaskingRuleConfig[];
  /** How `action: review` units are settled; without it they are refused naming the rule. */
  review?: ReviewConfig;
}

/** A connector's `review:` block (docs/approvals.md). */
export interface ReviewConfig {
  reviewers: GroupSelector;
  mode: 'hold' | 'reject';
  /** Milliseconds (the loader normalises durations). */
  timeout: number;
  /** Distinct reviewers who must approve. */
  approvals: number;
}

/** One `approvals.notify` entry: a signed JSON webhook, or a Slack-compatible incoming webhook. */
export type ApprovalNotifyConfig = { webhook: string; secret: string } | { slack: string };

/** The top-level `approvals:` key (filled with defaults by the loader). */
export interface ApprovalsConfig {
  store: 'sqlite' | 'postgres';
  postgres_url?: string;
  max_pending: number;
  console_url?: string;
  notify: ApprovalNotifyConfig[];
}

/**
 * A problem a schema cannot express, found on a validated config: the key path (as
 * segments, array indexes as numbers) and what is wrong. The loader adds file and line.
 */
export interface ConfigProblem {
  path: (string | number)[];
  message: string;
}

export interface OidcIssuerConfig {
  issuer: string;
  audience: string | string[];
  jwks_url?: string;
  groups_claim: string;
  /** Accepted JWS algorithms (asymmetric only). */
  algorithms: string[];
  /** Allowed clock skew, seconds. */
  clock_tolerance: number;
}

export interface StaticTokenConfig {
  token: string;
  subject: string;
  groups: string[];
}

/**
 * Maps a client certificate (verified against a connector's `tls.ca`) to an identity.
 * Exactly one of `cn` / `uri` names which certificate field is compared, exactly.
 */
export interface CertificateMappingConfig {
  /** The subject common name. */
  cn?: string;
  /** A `URI:` subject alternative name, e.g. a SPIFFE ID. */
  uri?: string;
  /** The identity's subject. */
  subject: string;
  groups: string[];
}

/** An SSH public key bound to an identity (`identity.ssh_keys`). */
export interface SshKeyMappingConfig {
  /** One OpenSSH public key line: `ssh-ed25519 AAAA… comment`. */
  key: string;
  subject: string;
  groups: string[];
}

/** A CA whose OpenSSH user certificates identify callers (`identity.ssh_user_ca`); principals[0] is the subject. */
export interface SshUserCaConfig {
  /** The CA's public key line: `ssh-ed25519 AAAA… ca`. */
  key: string;
  /** `principals`: the certificate's other principals are the identity's groups. */
  groups_from?: 'principals';
  /** Groups every identity certified by this CA gets. */
  groups: string[];
}

/** `console.oidc`: the IdP people sign in with (authorization code + PKCE, a confidential client). */
export interface ConsoleConfig {
  oidc: {
    issuer: string;
    client_id: string;
    client_secret: string;
    /** Registered at the IdP; its path is always `/ui/callback`, its origin is the console's public origin. */
    redirect_url: string;
  };
}

/** One `agent.sinks` entry (docs/agent.md). `name` defaults to the type (type-index when a type repeats). */
export type AgentSinkConfig =
  | { type: 'postgres'; name?: string; url: string }
  | { type: 'nats'; name?: string; url: string; subject: string; stream: string }
  | { type: 'http'; name?: string; url: string; secret: string; /** ms */ timeout: number }
  | { type: 'file'; name?: string; path: string; max_bytes: number };

/** `agent`: the shipping agent. Durations are milliseconds (normalised by the loader). */
export interface AgentConfig {
  sinks: AgentSinkConfig[];
  batch_size: number;
  read_ahead: number;
  poll_interval: number;
  retry_max: number;
  /** 0: verify the whole local log against the last shipped checkpoint at start only. */
  reverify_interval: number;
  /** Default: `<data_dir>/agent`. */
  state_dir?: string;
  metrics_listen?: string;
  /** Pinned note verifier key of the gateway's log; default: audit-key.pub, pinned at first start. */
  verifier_key?: string;
  /** Ed25519 PKCS#8 PEM file (created if missing): co-sign each verified checkpoint. */
  witness_key?: string;
  /** Key name in the cosignature; default `gatehouse-agent/<gateway_id>`. */
  witness_name?: string;
}

/** `workers:` as written: `auto` or 1..256. */
export type WorkersSetting = 'auto' | number;

export interface GatehouseConfig {
  data_dir: string;
  /** Names this instance in the shipped trail; default: derived from the host name. */
  gateway_id: string;
  /** The shipping agent's settings (absent: `gatehouse agent` refuses to start). */
  agent?: AgentConfig;
  /**
   * Connection worker processes sharing the listeners: 1 (the default) serves everything in
   * one process; `auto` is one per available core (resolved at start: `resolveWorkers`).
   * Optional in hand-built configs (absent = 1).
   */
  workers?: WorkersSetting;
  /** `tls`: HTTPS with cert/key; with client_auth, every connection needs a certificate signed by ca. */
  admin: { listen: string; tls?: TlsConfig };
  /** Human sign-in for the web console under /ui/ (absent: no console, bearer tokens only). */
  console?: ConsoleConfig;
  log: { level: 'trace' | 'debug' | 'info' | 'warn' | 'error' };
  audit: {
    durability: 'strict' | 'batched';
    window_ms: number;
    /** Seconds between signed checkpoints (one is also written when idle). */
    checkpoint_interval: number;
    /** Origin line of the signed checkpoint note, also the signing key's name. */
    origin: string;
  };
  identity: {
    oidc: OidcIssuerConfig[];
    static_tokens: StaticTokenConfig[];
    /** Client-certificate identities (mTLS); filled with `[]` by the loader. */
    certificates?: CertificateMappingConfig[];
    /** SSH public keys bound to identities; filled with `[]` by the loader. */
    ssh_keys?: SshKeyMappingConfig[];
    /** CAs of OpenSSH user certificates; filled with `[]` by the loader. */
    ssh_user_ca?: SshUserCaConfig[];
    /** `reviewer`: may approve, deny and grant where a connector's `review.reviewers` names them too. */
    roles: { admin?: GroupSelector; reviewer?: GroupSelector; auditor?: GroupSelector };
  };
  /** Review requests and grants: store and notifications (optional in hand-built configs). */
  approvals?: ApprovalsConfig;
  connectors: ConnectorConfig[];
  /** Where the file was loaded from (for messages), set by the loader. */
  source: string;
}
