export { startGateway, StartupError, type Gateway, type GatewayOptions } from './gateway.js';
export { connectorModules } from './connectors.js';
export { main } from './cli.js';
export type { DirectoryRow } from './session-directory.js';
