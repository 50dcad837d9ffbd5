/**
 * @gatehouse/agent — the shipping agent: tails the local audit log read-only, verifies it,
 * ships events and signed checkpoints to PostgreSQL, NATS JetStream, HTTP and files; and
 * the verification of the central store from outside. See docs/agent.md.
 */
export { startAgent, type AgentOptions, type RunningAgent } from './agent.js';
export { verifyCentral, compareLocal, type GatewayReport, type CompareReport, type CentralOptions } from './central-verify.js';
export { migrate, SCHEMA_VERSION } from './central-schema.js';
export { signBody, SIGNATURE_HEADER, TIMESTAMP_HEADER } from './sinks/http.js';
export { cosign, verifyCosignature, parseWitnessKey, loadOrCreateWitness } from './witness.js';
export { jsonLogger, redactUrl, type AgentLogger } from './log.js';
