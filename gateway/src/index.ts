export { startGateway, StartupError, type Gateway, type GatewayOptions } from './gateway.js';
export { main } from './cli.js';
