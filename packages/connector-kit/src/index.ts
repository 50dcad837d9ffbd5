/**
 * @gatehouse/connector-kit — the plumbing every connector shares, so a protocol folder holds
 * protocol and nothing else.
 */
export { FramePump, type Framer, type PumpHandlers, type Side } from './pump.js';
export { ConnectorServer, type StopHooks } from './server.js';
export { cleartextTokenRefusal, CLEARTEXT_REFUSAL, Deadline, endGracefully, peerOf } from './peer.js';
export { connectTcp, secureUpstream, type UpstreamTlsOptions } from './upstream.js';
export { bytesBehindUpgrade, CERTIFICATE_REFUSED, loadTls, pem, ServerTls, type TlsMaterial, type Upgrade } from './tls.js';
export { RefreshingSnapshot, type RefreshingOptions } from './refreshing.js';
export { indexByName, qualifiedNames } from './catalog-names.js';
export { MaskedCatalogView, type NamedCatalogSnapshot } from './masked-catalog-view.js';
export { then, type Maybe } from './maybe.js';
