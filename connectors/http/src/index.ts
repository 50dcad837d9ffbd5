/**
 * @gatehouse/connector-http — the HTTP API connector: bearer-authenticated reverse proxy
 * with upstream credential injection, per-request policy, response masking and audit.
 */
export { createHttpConnector } from './connector.js';
export { parseTarget, type Target } from './path.js';
export { WsFrameCounter } from './ws-frames.js';
export { planUnits, buildUnit, type UnitPlan } from './unit.js';
export { resolveUpstreamAuth, withCredentialQuery, type UpstreamAuth } from './credential.js';
export { maskBody, maskJsonDocument } from './mask-response.js';
export { mediaType, type MediaType, type BodyKind } from './media-type.js';
export { overrideMethod, stripMethodParam } from './method-override.js';
export { decodeForDetectors, maskUrlText, maskHeaderValue } from './detect-text.js';
export { LineMasker } from './line-masker.js';
export { hiddenFormat } from './sniff.js';
