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

export interface ReviewConfig {
  reviewers: GroupSelector;
  mode: 'hold' | 'deny';
  /** Milliseconds (written as a duration such as `5m`). */
  timeout: number;
}

export interface TlsConfig {
  cert?: string;
  key?: string;
  ca?: string;
  /** Accept only clients presenting a certificate signed by `ca`. */
  client_auth?: boolean;
}

export interface ConnectorBase {
  name: string;
  type: 'postgres' | 'mysql' | 'ssh' | 'http';
  listen: string;
  tls?: TlsConfig;
  allow: GroupSelector[];
  rules: RuleConfig[];
  masking: MaskingRuleConfig[];
  review?: ReviewConfig;
}

export interface PostgresUpstream {
  address: string;
  database: string;
  user: string;
  password?: string;
  /** disable | prefer | require | verify-full */
  sslmode: 'disable' | 'prefer' | 'require' | 'verify-full';
  ca?: string;
  /**
   * Upstream roles by caller group: the first entry naming one of the caller's groups
   * logs in with its user / password instead (e.g. a role with column grants for masked
   * callers: the database's own grants back the gateway).
   */
  by_group: PostgresGroupLogin[];
}

export interface PostgresGroupLogin {
  groups: string[];
  user: string;
  password?: string;
}

export interface PostgresConnectorConfig extends ConnectorBase {
  type: 'postgres';
  upstream: PostgresUpstream;
  /** Largest frontend message accepted, bytes. */
  max_message_bytes: number;
  /** What to do with a statement the parser cannot classify. */
  on_parse_error: 'deny' | 'allow';
  /** Time allowed for TLS + startup + authentication, ms. */
  startup_timeout: number;
  /** Largest upstream (result) message relayed, bytes. */
  max_result_message_bytes: number;
  /** Named prepared statements / portals one session may hold. */
  max_prepared_statements: number;
  /**
   * restricted (default): a masked caller's statement whose output masking cannot trace
   * (an expression, whole-row reference, view or function over a masked column, procedural
   * code) is refused. permissive: it runs, masked by output name and detectors only.
   */
  masking_mode: 'restricted' | 'permissive';
}

export interface HttpCredential {
  /** bearer | basic | header | query */
  type: 'bearer' | 'basic' | 'header' | 'query';
  token?: string;
  username?: string;
  password?: string;
  name?: string;
  value?: string;
}

export interface HttpUpstream {
  url: string;
  headers?: Record<string, string>;
  credential?: HttpCredential;
  /** PEM CA bundle to trust (pinning) for an https upstream. */
  ca?: string;
  timeout: number;
}

export interface HttpConnectorConfig extends ConnectorBase {
  type: 'http';
  upstream: HttpUpstream;
  /** Largest body buffered for masking or JSON rules, bytes. */
  max_body_bytes: number;
  /** For a masked caller, bodies the JSON rules cannot read: masked by the detectors, or refused (502). */
  unknown_content: 'detectors' | 'refuse';
  /** Method-override headers and `_method=`: judged as the method they name, or removed before the upstream. */
  method_override: 'judge' | 'strip';
  /** Request bodies up to this many bytes are sampled (masked) into the audit event. */
  audit_body_bytes: number;
}

export interface GenericConnectorConfig extends ConnectorBase {
  type: 'mysql' | 'ssh';
  upstream: Record<string, unknown>;
}

export type ConnectorConfig = PostgresConnectorConfig | HttpConnectorConfig | GenericConnectorConfig;

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

export interface GatehouseConfig {
  data_dir: string;
  admin: { listen: string; tls?: TlsConfig };
  log: { level: 'trace' | 'debug' | 'info' | 'warn' | 'error' };
  audit: {
    durability: 'strict' | 'batched';
    window_ms: number;
    /** Seconds between signed checkpoints (one is also written when idle). */
    checkpoint_interval: number;
    /** Origin line of the signed checkpoint note. */
    origin: string;
  };
  identity: {
    oidc: OidcIssuerConfig[];
    static_tokens: StaticTokenConfig[];
    /** Client-certificate identities (mTLS); filled with `[]` by the loader. */
    certificates?: CertificateMappingConfig[];
    roles: { admin?: GroupSelector; reviewer?: GroupSelector; auditor?: GroupSelector };
  };
  connectors: ConnectorConfig[];
  /** Where the file was loaded from (for messages), set by the loader. */
  source: string;
}
