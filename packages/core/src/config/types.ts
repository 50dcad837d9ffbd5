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

export interface GatehouseConfig {
  data_dir: string;
  /** `tls`: HTTPS with cert/key; with client_auth, every connection needs a certificate signed by ca. */
  admin: { listen: string; tls?: TlsConfig };
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
    /** `reviewer` is refused at load until approvals exist; the type keeps it for roleOf. */
    roles: { admin?: GroupSelector; reviewer?: GroupSelector; auditor?: GroupSelector };
  };
  connectors: ConnectorConfig[];
  /** Where the file was loaded from (for messages), set by the loader. */
  source: string;
}
