/**
 * Incremental verification of a stream of events, wherever they come from (the local SQLite
 * log while tailing it, or the central PostgreSQL store): sequence continuity, canonical
 * encoding, the hash chain, the RFC 6962 tree, and signed checkpoints against the tree.
 * The hashing, tree and note code is @gatehouse/audit's; this only drives it one event at a time.
 */
import { canonicalJson, EMPTY_ROOT, Frontier, hashEvent, openCheckpoint, ZERO_HASH, type Checkpoint, type NoteKey } from '@gatehouse/audit';

/** Where the verified prefix ends: enough to resume without re-reading it (≈ 40 + 32·log₂n bytes). */
export interface ChainState {
  size: number;
  /** Hex chain hash of event `size` (64 zeros at size 0). */
  hash: string;
  /** Base64 Frontier.serialize(). */
  frontier: string;
}

export interface Fault {
  /** First sequence number that is not proven good. */
  seq: number;
  code: 'agent.gap' | 'agent.bad_hash' | 'agent.not_canonical' | 'agent.bad_checkpoint' | 'agent.rollback';
  message: string;
}

export const INITIAL: ChainState = { size: 0, hash: ZERO_HASH.toString('hex'), frontier: new Frontier().serialize().toString('base64') };

export class ChainVerifier {
  private frontier: Frontier;
  private prev: Buffer;
  private prevHex: string;

  constructor(from: ChainState = INITIAL) {
    this.frontier = Frontier.deserialize(Buffer.from(from.frontier, 'base64'));
    if (this.frontier.size !== from.size) throw new Error(`chain state: frontier is of size ${this.frontier.size}, not ${from.size}`);
    this.prev = Buffer.from(from.hash, 'hex');
    this.prevHex = from.hash;
  }

  get size(): number {
    return this.frontier.size;
  }

  get hash(): string {
    return this.prevHex;
  }

  root(): Buffer {
    return this.frontier.size === 0 ? EMPTY_ROOT : this.frontier.root();
  }

  state(): ChainState {
    return { size: this.frontier.size, hash: this.prevHex, frontier: this.frontier.serialize().toString('base64') };
  }

  /**
   * One event, in order. `stored` are the columns the store keeps next to the body (checked
   * when given). Returns the event's hex hash, or the fault; after a fault the verifier is
   * unchanged and must not be fed again.
   */
  feed(seq: number, body: string, stored: { hash?: Buffer; prev?: Buffer; leaf?: Buffer } = {}): string | Fault {
    const expected = this.frontier.size + 1;
    if (seq !== expected)
      return { seq: expected, code: 'agent.gap', message: seq > expected ? `event ${expected} is missing (next is ${seq})` : `event ${seq} repeats or is out of order` };
    let parsed: { seq?: unknown; prev?: unknown } | null;
    try {
      parsed = JSON.parse(body) as { seq?: unknown; prev?: unknown } | null;
    } catch {
      return { seq, code: 'agent.bad_hash', message: `event ${seq}: body is not JSON` };
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return { seq, code: 'agent.bad_hash', message: `event ${seq}: body is not an object` };
    if (parsed.seq !== seq) return { seq, code: 'agent.gap', message: `event ${seq}: hashed body says seq ${String(parsed.seq)} (reordered)` };
    if (parsed.prev !== this.prevHex || (stored.prev && !stored.prev.equals(this.prev))) {
      return { seq: Math.max(1, seq - 1), code: 'agent.bad_hash', message: `chain broken between events ${seq - 1} and ${seq} (prev does not match)` };
    }
    const { hash, leaf } = hashEvent(this.prev, body);
    if (stored.hash && !hash.equals(stored.hash)) return { seq, code: 'agent.bad_hash', message: `event ${seq}: hash does not match the event (edited)` };
    if (stored.leaf && !leaf.equals(stored.leaf)) return { seq, code: 'agent.bad_hash', message: `event ${seq}: stored leaf hash does not match the event` };
    if (canonicalJson(parsed) !== body) return { seq, code: 'agent.not_canonical', message: `event ${seq}: body is not canonical JSON` };
    this.frontier.append(leaf);
    this.prev = hash;
    this.prevHex = hash.toString('hex');
    return this.prevHex;
  }

  /**
   * A signed checkpoint of exactly the current size: signature by `key`, origin, and root.
   * The first bad seq of a mismatch is `vouched + 1` (vouched: the largest size a good
   * checkpoint covered), as verifyLog reports it.
   */
  checkpoint(note: string, key: NoteKey, origin: string | null, vouched: number): Checkpoint | Fault {
    const firstBad = Math.min(vouched + 1, Math.max(1, this.size));
    const c = openCheckpoint(note, key);
    if (!c.ok) return { seq: firstBad, code: 'agent.bad_checkpoint', message: `checkpoint at size ${this.size}: ${c.error.message}` };
    if (origin !== null && c.value.origin !== origin)
      return { seq: firstBad, code: 'agent.bad_checkpoint', message: `checkpoint origin "${c.value.origin}" is not the log's "${origin}"` };
    if (c.value.size !== this.size) return { seq: firstBad, code: 'agent.bad_checkpoint', message: `checkpoint signs size ${c.value.size}, expected ${this.size}` };
    if (!c.value.root.equals(this.root())) {
      return {
        seq: firstBad,
        code: 'agent.bad_checkpoint',
        message: `checkpoint at size ${this.size}: signed root does not match the events (forged checkpoint or rewritten log)`,
      };
    }
    return c.value;
  }
}

export const isFault = (x: unknown): x is Fault => typeof x === 'object' && x !== null && 'code' in x && 'seq' in x;
