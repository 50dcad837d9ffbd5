/**
 * @gatehouse/audit — the tamper-evident audit log: hash chain, RFC 6962 Merkle tree,
 * Ed25519-signed C2SP checkpoints, offline verification and inclusion proofs.
 */
export { openAuditLog, AuditError, type AuditLog, type AuditLogOptions, type AuditStats } from './audit-log.js';
export { readEvents, iterateEvents, readLatestCheckpoint, readVerifierKey, type EventFilter } from './read.js';
export { verifyLog, type VerifyReport, type VerifyOptions } from './verify.js';
export { proveInclusion, verifyProofBundle, PROOF_FORMAT, type ProofBundle } from './proof.js';
export { canonicalJson } from './canonical.js';
export { parseVerifierKey, openCheckpoint, type Checkpoint, type NoteKey } from './note.js';
export { DB_FILE, DURABLE_FILE, KEY_FILE, PUB_FILE, readDurableSeq } from './store.js';
// Building blocks for readers outside this package (the shipping agent, central verification).
export { openReadOnly, readMeta, type Db } from './store.js';
export { hashEvent, sha256, EMPTY_ROOT, ZERO_HASH } from './hashing.js';
export { Frontier } from './merkle.js';
export { loadOrCreateEd25519 } from './keys.js';
