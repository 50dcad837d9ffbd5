/**
 * @gatehouse/connector-http — the HTTP API connector: bearer-authenticated reverse proxy
 * with upstream credential injection, per-request policy, response masking and audit.
 */
import type { ConnectorModule } from '@gatehouse/core';
import { createHttpConnector } from './connector.js';
import type { HttpConnectorConfig } from './config.js';
import { checkHttpConfig, httpSchema } from './schema.js';

/** `type: http`: its config keys and its factory, registered by the host (gateway, CLI). */
export const httpConnector: ConnectorModule<HttpConnectorConfig> = {
  type: 'http',
  schema: httpSchema,
  check: checkHttpConfig,
  create: createHttpConnector,
};

export { createHttpConnector };
export type { HttpConnectorConfig } from './config.js';
// The pieces below are exported for the connector's unit tests (connectors/http/test).
export { parseTarget } from './path.js';
export { WsFrameCounter } from './ws-frames.js';
export { resolveUpstreamAuth, withCredentialQuery } from './credential.js';
export { maskJsonDocument } from './mask-response.js';
export { mediaType } from './media-type.js';
export { overrideMethod, stripMethodParam } from './method-override.js';
export { decodeForDetectors, maskUrlText, maskHeaderValue } from './detect-text.js';
export { LineMasker } from './line-masker.js';
export { hiddenFormat } from './sniff.js';
