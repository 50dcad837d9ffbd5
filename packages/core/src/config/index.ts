export * from './types.js';
export { loadConfig, parseConfig, parseDuration, ConfigError, type ParseOptions } from './load.js';
// Building blocks for connector modules' schemas (one meaning, one message per kind of key).
export { address, duration, groupSelector, str, strList, unavailable, type Schema } from './schema-common.js';
export { checkWorkers, MAX_WORKERS, resolveWorkers } from './check-workers.js';
