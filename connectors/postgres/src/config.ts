/** The configuration of a `type: postgres` connector, as validated by ./schema.ts. */
import type { ConnectorConfig } from '@gatehouse/core';

export interface PostgresUpstream {
  address: string;
  database: string;
  user: string;
  password?: string;
  /** disable | prefer | require | verify-full */
  sslmode: 'disable' | 'prefer' | 'require' | 'verify-full';
  /** PEM CA bundle the upstream's certificate is verified against (`verify-full` only). */
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

export interface PostgresConnectorConfig extends ConnectorConfig {
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
