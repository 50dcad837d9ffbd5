/**
 * The Connector contract: one per protocol, one instance per configured connector.
 * A connector owns its listener and its sockets and nothing else.
 */
import type { ConnectorConfig } from './config/types.js';
import type { Logger } from './engines.js';
import type { PeerInfo, Session } from './session.js';

export interface ConnectorContext<C extends ConnectorConfig = ConnectorConfig> {
  config: C;
  /** Gateway data directory (development TLS certificates live here). */
  dataDir: string;
  logger: Logger;
  /** A new Session for an accepted connection; the connector calls `authenticate` next. */
  openSession(peer: PeerInfo): Session;
}

export interface Connector {
  readonly name: string;
  readonly type: string;
  /** Bind the listener; resolves with the bound `host:port`. */
  start(): Promise<string>;
  /**
   * Stop accepting, let open sessions finish for up to `drainMs`, then close the rest
   * (each ends its Session so that the audit trail is complete).
   */
  stop(drainMs: number): Promise<void>;
  /** Open client connections (for /metrics and drain). */
  readonly connections: number;
}

export type ConnectorFactory<C extends ConnectorConfig = ConnectorConfig> = (ctx: ConnectorContext<C>) => Connector;
