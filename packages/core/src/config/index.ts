export * from './types.js';
export { loadConfig, parseConfig, parseDuration, ConfigError } from './load.js';
