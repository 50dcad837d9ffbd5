/**
 * Inclusion proofs: a self-contained JSON bundle that convinces anyone holding the note
 * verifier key that one event is in the log, without access to the log.
 */
import { err, ok, type AuditEvent, type Result } from '@gatehouse/core';
import { canonicalJson } from './canonical.js';
import { chainHash, leafHash } from './hashing.js';
import { inclusionPathFromLeaves, rootFromInclusionPath } from './merkle.js';
import { openCheckpoint, parseCheckpointBody, parseVerifierKey } from './note.js';
import { openReadOnly } from './store.js';

export const PROOF_FORMAT = 'gatehouse.audit.inclusion/1';
const MAX_PATH = 64;
const MAX_CANONICAL_BYTES = 1024 * 1024 + 1024;

export interface ProofBundle {
  format: typeof PROOF_FORMAT;
  /** The event as exported (with its chain hash). */
  event: AuditEvent;
  /** The exact canonical bytes (UTF-8) that were hashed into the leaf. */
  canonical: string;
  /** 0-based: seq - 1. */
  leafIndex: number;
  treeSize: number;
  /** RFC 6962 audit path, base64, deepest sibling first. */
  path: string[];
  /** Signed checkpoint (C2SP note) for `treeSize`. */
  checkpoint: string;
}

/** Builds a proof against the newest checkpoint. Throws when the event is not covered yet. */
export function proveInclusion(dataDir: string, seq: number): ProofBundle {
  if (!Number.isInteger(seq) || seq < 1) throw new Error(`seq must be a positive integer, got ${seq}`);
  const db = openReadOnly(dataDir);
  if (!db) throw new Error(`no audit log in ${dataDir}`);
  try {
    db.exec('BEGIN');
    const cp = db.prepare('SELECT note FROM checkpoints ORDER BY id DESC LIMIT 1').get() as { note: string } | undefined;
    if (!cp) throw new Error('the log has no signed checkpoint yet');
    const body = parseCheckpointBody(cp.note.slice(0, cp.note.lastIndexOf('\n\n') + 1));
    if (!body.ok) throw new Error(`latest checkpoint unreadable: ${body.error.message}`);
    const size = body.value.size;
    if (seq > size) throw new Error(`event ${seq} is not covered by a signed checkpoint yet (latest covers ${size}); retry after the next one`);
    const row = db.prepare('SELECT body, hash FROM events WHERE seq = ?').get(seq) as { body: string; hash: Buffer } | undefined;
    if (!row) throw new Error(`event ${seq} is not in the log`);
    const leaves = function* () {
      for (const r of db.prepare('SELECT leaf FROM events WHERE seq <= ? ORDER BY seq').iterate(size) as Iterable<{ leaf: Buffer }>) yield r.leaf;
    };
    const path = inclusionPathFromLeaves(leaves(), seq - 1, size);
    const event = JSON.parse(row.body) as AuditEvent;
    event.hash = row.hash.toString('hex');
    return { format: PROOF_FORMAT, event, canonical: row.body, leafIndex: seq - 1, treeSize: size, path: path.map((h) => h.toString('base64')), checkpoint: cp.note };
  } finally {
    db.close();
  }
}

const bad = (message: string) => err('audit.proof_invalid', message);

/** Checks a bundle (e.g. parsed from untrusted JSON) against a trusted note verifier key. */
export function verifyProofBundle(bundle: ProofBundle, verifierKey: string): Result<{ seq: number; size: number }> {
  const key = parseVerifierKey(verifierKey);
  if (!key.ok) return key;
  const b = bundle as Partial<ProofBundle> | null;
  if (!b || typeof b !== 'object' || b.format !== PROOF_FORMAT) return bad(`not a ${PROOF_FORMAT} bundle`);
  if (typeof b.canonical !== 'string' || Buffer.byteLength(b.canonical) > MAX_CANONICAL_BYTES) return bad('canonical event missing or too large');
  if (!Number.isSafeInteger(b.leafIndex) || !Number.isSafeInteger(b.treeSize)) return bad('leafIndex and treeSize must be integers');
  if (!Array.isArray(b.path) || b.path.length > MAX_PATH || !b.path.every((p) => typeof p === 'string')) return bad('path must be a list of base64 hashes');
  if (typeof b.checkpoint !== 'string') return bad('checkpoint missing');
  if (!b.event || typeof b.event !== 'object') return bad('event missing');

  const cp = openCheckpoint(b.checkpoint, key.value);
  if (!cp.ok) return bad(`checkpoint: ${cp.error.message}`);
  if (cp.value.size !== b.treeSize) return bad(`bundle says tree size ${b.treeSize}, its checkpoint ${cp.value.size}`);

  let hashed: { seq?: unknown; prev?: unknown };
  try {
    hashed = JSON.parse(b.canonical) as { seq?: unknown; prev?: unknown };
  } catch {
    return bad('canonical event is not JSON');
  }
  const leafIndex = b.leafIndex as number;
  if (hashed.seq !== leafIndex + 1 || b.event.seq !== hashed.seq) return bad('event seq does not match the leaf index');
  const { hash, ...rest } = b.event;
  if (canonicalJson(rest) !== b.canonical) return bad('event does not match the hashed bytes');
  if (typeof hashed.prev !== 'string' || !/^[0-9a-f]{64}$/.test(hashed.prev)) return bad('event has no valid prev');
  if (chainHash(Buffer.from(hashed.prev, 'hex'), b.canonical).toString('hex') !== hash) return bad('event hash does not match its chain link');

  const path: Buffer[] = [];
  for (const p of b.path) {
    const h = Buffer.from(p, 'base64');
    if (h.length !== 32) return bad('path entry is not a 32-byte hash');
    path.push(h);
  }
  const root = rootFromInclusionPath(leafHash(b.canonical), leafIndex, b.treeSize, path);
  if (!root) return bad('audit path has the wrong length for this leaf and tree size');
  if (!root.equals(cp.value.root)) return bad('audit path does not lead to the signed root');
  return ok({ seq: leafIndex + 1, size: cp.value.size });
}
