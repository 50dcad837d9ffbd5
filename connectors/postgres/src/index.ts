/**
 * @gatehouse/connector-postgres — PostgreSQL wire-protocol connector: token login, the
 * gateway's own upstream credential, per-statement policy, result masking and audit.
 */
import type { ConnectorModule } from '@gatehouse/core';
import { initSqlParser } from '@gatehouse/policy';
import { createPostgresConnector, routedPostgresConnector } from './connector.js';
import type { PostgresConnectorConfig } from './config.js';
import type { CancelRouting } from './cancel-keys.js';
import { checkPostgresConfig, postgresSchema } from './schema.js';

/** `type: postgres`: its config keys and its factory, registered by the host (gateway, CLI). */
export const postgresConnector: ConnectorModule<PostgresConnectorConfig> = {
  type: 'postgres',
  schema: postgresSchema,
  check: checkPostgresConfig,
  // Statements are classified by the real PostgreSQL parser (WebAssembly), loaded once.
  prepare: initSqlParser,
  create: createPostgresConnector,
};

/**
 * `type: postgres` in a connection worker: the same module, with cancel keys that name the
 * worker that issued them and CancelRequests forwarded to it (gateway/src/cluster).
 */
export function postgresConnectorRouted(routing: CancelRouting): ConnectorModule<PostgresConnectorConfig> {
  return { ...postgresConnector, create: routedPostgresConnector(routing) };
}

export { createPostgresConnector };
export type { PostgresConnectorConfig, PostgresUpstream, PostgresGroupLogin } from './config.js';
export { postgresSchema, checkPostgresConfig } from './schema.js';
export { MessageFramer, type Frame, type FrameError } from './framer.js';
export { maskDataRow, readRowDescription, sampleRow, commandRows, type ResultShape } from './result-shape.js';
export { binaryToText } from './binary-text.js';
export { raiseSql } from './deny.js';
export { bindParams, readBind, readParse, readQuery } from './frontend.js';
export { CancelKeys, MAX_OWNER, type CancelRouting } from './cancel-keys.js';
export { ScramClient } from './scram.js';
