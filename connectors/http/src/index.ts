/**
 * @gatehouse/connector-http — the HTTP API connector: bearer-authenticated reverse proxy
 * with upstream credential injection, per-request policy, response masking and audit.
 */
export { createHttpConnector } from './connector.js';
export { parseTarget, type Target } from './path.js';
export { WsFrameCounter } from './ws-frames.js';
export { planUnits, buildUnit, type UnitPlan } from './unit.js';
export { resolveUpstreamAuth, withCredentialQuery, type UpstreamAuth } from './credential.js';
export { maskKind, maskBody, type MaskKind } from './mask-response.js';
