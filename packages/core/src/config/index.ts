export * from './types.js';
export { loadConfig, parseConfig, parseDuration, ConfigError, type ParseOptions } from './load.js';
