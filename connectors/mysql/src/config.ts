/** The configuration of a `type: mysql` connector, as validated by ./schema.ts. */
import type { ConnectorConfig } from '@gatehouse/core';

export interface MysqlUpstream {
  address: string;
  /** Default database when the caller names none. */
  database: string;
  user: string;
  password: string;
  /** TLS to the upstream, with libpq's sslmode semantics. */
  tls: { mode: 'disable' | 'prefer' | 'require' | 'verify-full'; ca?: string };
  /** Upstream accounts by caller group: the first entry naming one of the caller's groups logs in instead. */
  by_group: MysqlGroupLogin[];
}

export interface MysqlGroupLogin {
  groups: string[];
  user: string;
  password: string;
}

export interface MysqlConnectorConfig extends ConnectorConfig {
  type: 'mysql';
  upstream: MysqlUpstream;
  /** Largest (logical) packet a caller may send, bytes. */
  max_message_bytes: number;
  /** Largest (logical) upstream packet relayed, bytes. */
  max_result_message_bytes: number;
  /** Prepared statements one session may hold. */
  max_prepared_statements: number;
  on_parse_error: 'deny' | 'allow';
  masking_mode: 'restricted' | 'permissive';
  /** Time allowed for TLS + handshake + authentication + the upstream login, ms. */
  startup_timeout: number;
}
