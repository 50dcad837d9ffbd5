/**
 * RFC 6962 Merkle tree pieces: an incremental frontier for the writer and the verifier
 * (O(log n) memory, amortised one node hash per leaf), and inclusion proofs.
 */
import { EMPTY_ROOT, HASH_BYTES, nodeHash } from './hashing.js';

/**
 * Roots of the perfect subtrees that make up a tree of `size` leaves, largest first
 * (one per set bit of `size`). Appending folds equal-sized subtrees, like a binary counter.
 */
export class Frontier {
  private nodes: Buffer[];
  private n: number;

  constructor(size = 0, nodes: Buffer[] = []) {
    if (popcount(size) !== nodes.length) throw new Error(`frontier of size ${size} needs ${popcount(size)} nodes, got ${nodes.length}`);
    this.n = size;
    this.nodes = nodes.slice();
  }

  get size(): number {
    return this.n;
  }

  append(leaf: Buffer): void {
    let h = leaf;
    for (let i = this.n; i & 1; i = Math.floor(i / 2)) h = nodeHash(this.nodes.pop()!, h);
    this.nodes.push(h);
    this.n++;
  }

  /** MTH of the whole tree; SHA-256("") when empty. */
  root(): Buffer {
    if (this.nodes.length === 0) return EMPTY_ROOT;
    let r = this.nodes[this.nodes.length - 1];
    for (let j = this.nodes.length - 2; j >= 0; j--) r = nodeHash(this.nodes[j], r);
    return r;
  }

  /** 8-byte big-endian size followed by the nodes: persisted with each commit. */
  serialize(): Buffer {
    const b = Buffer.alloc(8 + this.nodes.length * HASH_BYTES);
    b.writeBigUInt64BE(BigInt(this.n), 0);
    this.nodes.forEach((h, i) => h.copy(b, 8 + i * HASH_BYTES));
    return b;
  }

  static deserialize(b: Buffer): Frontier {
    const size = Number(b.readBigUInt64BE(0));
    const nodes: Buffer[] = [];
    for (let off = 8; off < b.length; off += HASH_BYTES) nodes.push(Buffer.from(b.subarray(off, off + HASH_BYTES)));
    return new Frontier(size, nodes);
  }
}

function popcount(n: number): number {
  let c = 0;
  for (let x = n; x > 0; x = Math.floor(x / 2)) c += x & 1;
  return c;
}

/** Largest power of two strictly below n (n ≥ 2). */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/**
 * The leaf ranges [start, end) whose subtree hashes form the RFC 6962 audit path
 * PATH(index, D[size]), in path order (deepest sibling first).
 */
export function inclusionRanges(index: number, size: number): Array<[number, number]> {
  if (!(index >= 0 && index < size)) throw new RangeError(`leaf ${index} not in tree of size ${size}`);
  const out: Array<[number, number]> = [];
  let lo = 0;
  let hi = size;
  let m = index;
  const stack: Array<[number, number]> = [];
  while (hi - lo > 1) {
    const k = splitPoint(hi - lo);
    if (m < k) {
      stack.push([lo + k, hi]);
      hi = lo + k;
    } else {
      stack.push([lo, lo + k]);
      lo += k;
      m -= k;
    }
  }
  // Collected top-down; the path lists siblings bottom-up.
  for (let i = stack.length - 1; i >= 0; i--) out.push(stack[i]);
  return out;
}

/**
 * Audit path from an ordered stream of leaf hashes (leaf 0 first, at least `size` of them):
 * one pass, O(log n) memory, so a proof over millions of events never loads them all.
 */
export function inclusionPathFromLeaves(leaves: Iterable<Buffer>, index: number, size: number): Buffer[] {
  const ranges = inclusionRanges(index, size);
  const byStart = ranges.map((r, i) => ({ r, i })).sort((a, b) => a.r[0] - b.r[0]);
  const path = new Array<Buffer>(ranges.length);
  let cur = 0;
  let f: Frontier | null = null;
  let pos = 0;
  for (const leaf of leaves) {
    if (pos >= size || cur >= byStart.length) break;
    const { r, i } = byStart[cur];
    if (pos >= r[0]) {
      f ??= new Frontier();
      f.append(leaf);
      if (pos === r[1] - 1) {
        path[i] = f.root();
        f = null;
        cur++;
      }
    }
    pos++;
  }
  if (cur < byStart.length) throw new Error(`only ${pos} leaves available for a tree of size ${size}`);
  return path;
}

/** RFC 9162 §2.1.3.2: the root implied by a leaf hash and its audit path, or null if malformed. */
export function rootFromInclusionPath(leaf: Buffer, index: number, size: number, path: readonly Buffer[]): Buffer | null {
  if (!(index >= 0 && index < size)) return null;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of path) {
    if (sn === 0) return null;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 ? r : null;
}
