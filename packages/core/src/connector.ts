/**
 * The Connector contract: one per protocol, one instance per configured connector.
 * A connector owns its listener and its sockets and nothing else.
 */
import type { ConfigProblem, ConnectorConfig } from './config/types.js';
import type { Schema } from './config/schema-common.js';
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

/**
 * The keys a connector type adds to those every connector has (`name`, `type`, `listen`,
 * `tls`, `allow`, `rules`, `masking`): JSON Schema per key, built from the blocks in
 * `config/schema-common.ts`. The loader closes the object (`additionalProperties: false`),
 * so an unknown key is refused with its line.
 */
export interface ConnectorSchema {
  properties: Record<string, Schema>;
  required?: readonly string[];
}

/**
 * Everything a protocol contributes to a build, as one object: the config loader
 * validates connectors of `type` with `schema` (and `check`), the gateway creates them with
 * `create`. Hosts pass the list of modules they serve to `parseConfig`/`loadConfig` and to
 * the gateway, so that both agree on which types exist and a new protocol touches neither.
 *
 * Methods, not function-valued properties: a module for a narrower config (`C`) must be
 * usable where `ConnectorModule` is expected (method parameters are bivariant).
 */
export interface ConnectorModule<C extends ConnectorConfig = ConnectorConfig> {
  /** The `type:` value of the connectors this module serves. */
  readonly type: string;
  readonly schema: ConnectorSchema;
  /**
   * Checks the schema cannot express, on a connector that passed it (defaults filled):
   * a key the protocol would otherwise ignore is refused here. `path` is relative to the
   * connector (e.g. `['upstream', 'ca']`).
   */
  check?(config: C): ConfigProblem | null;
  /** Once per process before any connector of this type is created (e.g. load a parser). */
  prepare?(): Promise<void>;
  create(ctx: ConnectorContext<C>): Connector;
}
