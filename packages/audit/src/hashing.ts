/**
 * The three hashes of the log. RFC 6962 domain separation (0x00 leaf, 0x01 node) keeps a
 * leaf from ever being passed off as an interior node. One-shot crypto.hash() over one
 * buffer: for ~400-byte inputs the Hash-object set-up costs more than the hashing.
 */
import { hash } from 'node:crypto';

export const HASH_BYTES = 32;
/** `prev` of the first event. */
export const ZERO_HASH: Buffer = Buffer.alloc(HASH_BYTES);

export function sha256(data: Buffer | string): Buffer {
  return hash('sha256', data, 'buffer');
}

/** RFC 6962 root of the empty tree: SHA-256 of the empty string. */
export const EMPTY_ROOT: Buffer = sha256(Buffer.alloc(0));

/** SHA-256(0x00 || canonical bytes). */
export function leafHash(canonical: Buffer | string): Buffer {
  const c = typeof canonical === 'string' ? Buffer.from(canonical, 'utf8') : canonical;
  const b = Buffer.allocUnsafe(1 + c.length);
  b[0] = 0x00;
  c.copy(b, 1);
  return sha256(b);
}

/** SHA-256(0x01 || left || right). */
export function nodeHash(left: Buffer, right: Buffer): Buffer {
  const b = Buffer.allocUnsafe(1 + 2 * HASH_BYTES);
  b[0] = 0x01;
  left.copy(b, 1);
  right.copy(b, 1 + HASH_BYTES);
  return sha256(b);
}

/** The chain link: SHA-256(prev (32 raw bytes) || canonical bytes). */
export function chainHash(prev: Buffer, canonical: Buffer | string): Buffer {
  const c = typeof canonical === 'string' ? Buffer.from(canonical, 'utf8') : canonical;
  const b = Buffer.allocUnsafe(HASH_BYTES + c.length);
  prev.copy(b, 0);
  c.copy(b, HASH_BYTES);
  return sha256(b);
}

/**
 * Chain hash and leaf hash of one event with a single encode of the body:
 * buffer = [slot][prev 32][body]; chain = H(prev||body), then slot-at-32 := 0x00 → H(0x00||body).
 */
export function hashEvent(prev: Buffer, body: string): { hash: Buffer; leaf: Buffer } {
  const len = Buffer.byteLength(body, 'utf8');
  const b = Buffer.allocUnsafe(1 + HASH_BYTES + len);
  prev.copy(b, 1);
  b.write(body, 1 + HASH_BYTES, 'utf8');
  const h = sha256(b.subarray(1));
  b[HASH_BYTES] = 0x00;
  const leaf = sha256(b.subarray(HASH_BYTES));
  return { hash: h, leaf };
}

/** Scratch buffers above this size are not kept between events (a rare large event). */
const KEEP_SCRATCH_BYTES = 64 * 1024;

/**
 * hashEvent for the writer's hot loop: same two hashes over the same bytes, but the body
 * is encoded once into a reused scratch buffer (no byteLength pass, no allocation per event).
 */
export class EventHasher {
  private scratch = Buffer.allocUnsafe(KEEP_SCRATCH_BYTES);

  hash(prev: Buffer, body: string): { hash: Buffer; leaf: Buffer } {
    // UTF-8 needs at most 3 bytes per UTF-16 code unit.
    const need = 1 + HASH_BYTES + 3 * body.length;
    const b = need <= this.scratch.length ? this.scratch : Buffer.allocUnsafe(need);
    prev.copy(b, 1);
    const end = 1 + HASH_BYTES + b.write(body, 1 + HASH_BYTES, 'utf8');
    const h = sha256(b.subarray(1, end));
    b[HASH_BYTES] = 0x00;
    const leaf = sha256(b.subarray(HASH_BYTES, end));
    return { hash: h, leaf };
  }
}
