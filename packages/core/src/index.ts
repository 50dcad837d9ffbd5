export * from './types.js';
export * from './engines.js';
export * from './session.js';
export * from './connector.js';
export * from './selectors.js';
export * from './config/index.js';
export * from './address.js';
export * from './client-certificate.js';
