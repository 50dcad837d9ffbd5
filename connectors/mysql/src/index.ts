/**
 * @gatehouse/connector-mysql — MySQL / MariaDB wire-protocol connector: token login, the
 * gateway's own upstream credential, per-statement policy, result masking and audit.
 */
import type { ConnectorModule } from '@gatehouse/core';
import { createMysqlConnector } from './connector.js';
import type { MysqlConnectorConfig } from './config.js';
import { checkMysqlConfig, mysqlSchema } from './schema.js';

/** `type: mysql`: its config keys and its factory, registered by the host (gateway, CLI). */
export const mysqlConnector: ConnectorModule<MysqlConnectorConfig> = {
  type: 'mysql',
  schema: mysqlSchema,
  check: checkMysqlConfig,
  create: createMysqlConnector,
};

export { createMysqlConnector };
export type { MysqlConnectorConfig, MysqlUpstream, MysqlGroupLogin } from './config.js';
export { mysqlSchema, checkMysqlConfig } from './schema.js';
export { PacketFramer, encode, type Packet } from './packet.js';
export { Relay, type RelayOptions } from './relay.js';
