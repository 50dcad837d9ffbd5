/** The configuration of a `type: ssh` connector, as validated by ./schema.ts. */
import type { ConnectorConfig } from '@gatehouse/core';

export interface SshUpstream {
  /** host:port of the target's sshd. */
  address: string;
  /** The account the gateway logs in as (callers never choose it). */
  user: string;
  /** The gateway's own private key for the target: inline (`${file:…}`) or a path. */
  private_key?: string;
  passphrase?: string;
  password?: string;
  /** known_hosts text (inline, `${file:…}`) or a path: the target's host key must be listed. */
  known_hosts?: string;
  /** Accept and pin the key of a host with no known_hosts entry (kept in data_dir/ssh). */
  trust_on_first_use: boolean;
  /** TCP connect + SSH handshake + login, ms. */
  connect_timeout: number;
}

export interface SshRecordingConfig {
  /** Record terminal input too (typed passwords would be recorded). Default false. */
  input: boolean;
  /** Per-session budget of the recordings, bytes (uncompressed event bytes). */
  max_bytes: number | string;
}

export interface SshConnectorConfig extends ConnectorConfig {
  type: 'ssh';
  /** `data_dir` (default): one key created in data_dir/ssh and kept; or a private key (inline or path). */
  host_key: string;
  upstream: SshUpstream;
  recording: SshRecordingConfig;
  /** No data on any channel for this long: the connection is closed, ms. */
  idle_timeout: number;
  /** Keep-alive probes to the caller and the target, ms (0: off). */
  keepalive_interval: number;
  /** Authentication must complete within this, ms. */
  login_timeout: number;
  /** Failed logins per source address within `auth_failure_window` before it is refused. */
  max_auth_failures: number;
  auth_failure_window: number;
  /** Channels one connection may have open at once. */
  max_channels: number;
}
