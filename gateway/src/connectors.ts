/**
 * The protocols this build serves. The config loader accepts exactly these connector types
 * (each validated by its own module's schema) and the gateway starts them with the same
 * modules, so the two never disagree. A new protocol is one more entry here.
 */
import type { ConnectorModule } from '@gatehouse/core';
import { postgresConnector } from '@gatehouse/connector-postgres';
import { httpConnector } from '@gatehouse/connector-http';
import { mysqlConnector } from '@gatehouse/connector-mysql';
import { sshConnector } from '@gatehouse/connector-ssh';

export const connectorModules: readonly ConnectorModule[] = Object.freeze([postgresConnector, httpConnector, mysqlConnector, sshConnector]);
