/**
 * @gatehouse/connector-postgres — PostgreSQL wire-protocol connector: token login, the
 * gateway's own upstream credential, per-statement policy, result masking and audit.
 */
export { createPostgresConnector } from './connector.js';
export { MessageFramer, type Frame, type FrameError } from './framer.js';
export { maskDataRow, readRowDescription, sampleRow, commandRows, type ResultShape } from './result-shape.js';
export { binaryToText } from './binary-text.js';
export { raiseSql, denialMessage } from './deny.js';
export { bindParams, readBind, readParse, readQuery } from './frontend.js';
export { CancelKeys } from './cancel-keys.js';
export { ScramClient } from './scram.js';
