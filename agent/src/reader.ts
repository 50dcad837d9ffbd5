/**
 * Tails data_dir/audit.db read-only while the gateway writes it (SQLite WAL: readers never
 * block the writer) and verifies every event and checkpoint before anything is shipped.
 * One poll is one short read transaction (one snapshot): new checkpoints, then at most
 * `limit` events after the verified prefix.
 */
import { openReadOnly, readDurableSeq, readMeta, type Db, type NoteKey } from '@gatehouse/audit';
import { ChainVerifier, isFault, type ChainState, type Fault } from './chain.js';
import type { CheckpointRecord, EventRecord } from './records.js';
import { cosign, type Witness } from './witness.js';

export interface ReadBatch {
  events: EventRecord[];
  checkpoints: CheckpointRecord[];
  /** Verified state after the last event of this batch: what a sink's cursor records. */
  end: ChainState;
  readAt: number;
}

/** Something already shipped that the local log must still agree with. */
export interface Shipped {
  /** Sink cursors: seq → hex hash shipped at that seq. */
  hashes: Map<number, { hash: string; sink: string }>;
  /** Roots of checkpoints shipped, by size (base64). */
  roots: Map<number, { root: string; sink: string }>;
}

interface CpRow {
  id: number;
  size: number;
  note: string;
}

interface Row {
  seq: number;
  body: string;
  prev: Buffer;
  hash: Buffer;
  leaf: Buffer;
}

/** Snapshots kept to check a checkpoint whose row commits after we read past its size. */
const RING = 64;

export class LogReader {
  private db: Db | null = null;
  private chain: ChainVerifier;
  private lastCpId = -1;
  private pending: CpRow[] = [];
  private readonly ring: ChainState[] = [];
  private vouched = 0;
  private origin: string | null = null;
  private readonly maxShipped: number;

  constructor(
    private readonly dataDir: string,
    private readonly key: NoteKey,
    private readonly verifierKey: string,
    private readonly from: ChainState,
    private readonly shipped: Shipped,
    private readonly witness: Witness | null,
  ) {
    this.chain = new ChainVerifier(from);
    this.ring.push(from);
    this.maxShipped = Math.max(0, ...shipped.hashes.keys(), ...shipped.roots.keys());
  }

  get size(): number {
    return this.chain.size;
  }

  /** Largest seq in the local log (0 if none yet): for the lag metric. */
  localSize(): number {
    if (!this.db) return 0;
    return (this.db.prepare('SELECT max(seq) AS m FROM events').get() as { m: number | null }).m ?? 0;
  }

  close(): void {
    this.db?.close();
    this.db = null;
  }

  /** Next verified batch; null when there is nothing new (or no log yet); a Fault stops shipping. */
  poll(limit: number): ReadBatch | Fault | null {
    if (!this.db) {
      this.db = openReadOnly(this.dataDir);
      if (!this.db) return null;
      this.origin = readMeta(this.db, 'origin')?.toString('utf8') ?? null;
    }
    const db = this.db;
    db.exec('BEGIN');
    try {
      return this.read(db, limit);
    } finally {
      db.exec('COMMIT');
    }
  }

  private read(db: Db, limit: number): ReadBatch | Fault | null {
    const tail = this.checkTail(db);
    if (tail) return tail;
    const rows = (
      this.lastCpId < 0
        ? db.prepare('SELECT id, size, note FROM checkpoints WHERE size >= ? ORDER BY id').all(this.from.size)
        : db.prepare('SELECT id, size, note FROM checkpoints WHERE id > ? ORDER BY id LIMIT 10000').all(this.lastCpId)
    ) as CpRow[];
    for (const r of rows) {
      this.lastCpId = Math.max(this.lastCpId, r.id);
      this.pending.push(r);
    }
    this.pending.sort((a, b) => a.size - b.size || a.id - b.id);
    const checkpoints: CheckpointRecord[] = [];
    const events: EventRecord[] = [];
    const cps = this.checkpointsUpToHere(db, checkpoints);
    if (cps) return cps;
    // Only what the writer has on disk (audit.durable): an event a power cut could still take
    // back must not reach a sink, or the local log would later look rolled back.
    const durable = readDurableSeq(this.dataDir) ?? Number.MAX_SAFE_INTEGER;
    const evRows = db.prepare('SELECT seq, body, prev, hash, leaf FROM events WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?').all(this.chain.size, durable, limit) as Row[];
    for (const r of evRows) {
      const h = this.chain.feed(r.seq, r.body, r);
      if (isFault(h)) return h;
      const shipped = this.shipped.hashes.get(r.seq);
      if (shipped && shipped.hash !== h) {
        return { seq: r.seq, code: 'agent.rollback', message: `local event ${r.seq} differs from what sink ${shipped.sink} shipped (log rewritten after shipping)` };
      }
      events.push({ seq: r.seq, hash: h, body: r.body });
      const f = this.checkpointsUpToHere(db, checkpoints);
      if (f) return f;
    }
    if (!events.length && !checkpoints.length) return null;
    const end = this.chain.state();
    this.ring.push(end);
    if (this.ring.length > RING) this.ring.splice(1, 1); // keep the resume point: the fallback for very late rows
    return { events, checkpoints, end, readAt: Date.now() };
  }

  /** The last verified event must still be there, unchanged; nothing shipped may have vanished. */
  private checkTail(db: Db): Fault | null {
    const max = (db.prepare('SELECT max(seq) AS m FROM events').get() as { m: number | null }).m ?? 0;
    const need = Math.max(this.chain.size, this.maxShipped);
    if (max < need) return { seq: max + 1, code: 'agent.rollback', message: `local log truncated: it ends at ${max} but ${need} events were verified or shipped` };
    if (this.chain.size === 0) return null;
    const row = db.prepare('SELECT hash FROM events WHERE seq = ?').get(this.chain.size) as { hash: Buffer } | undefined;
    if (!row || row.hash.toString('hex') !== this.chain.hash) {
      return { seq: this.chain.size, code: 'agent.rollback', message: `local event ${this.chain.size} changed after it was verified (log rewritten)` };
    }
    return null;
  }

  /** Verifies pending checkpoints whose size is now reached; late ones are checked against a snapshot. */
  private checkpointsUpToHere(db: Db, out: CheckpointRecord[]): Fault | null {
    while (this.pending.length && this.pending[0].size <= this.chain.size) {
      const cp = this.pending.shift()!;
      // Older than where this run resumed: verified by an earlier run (and by the periodic full re-verification).
      if (cp.size < this.from.size) continue;
      const verifier = cp.size === this.chain.size ? this.chain : this.replayTo(db, cp.size);
      if (isFault(verifier)) return verifier;
      const c = verifier.checkpoint(cp.note, this.key, this.origin, this.vouched);
      if (isFault(c)) return c;
      const root = c.root.toString('base64');
      const shipped = this.shipped.roots.get(cp.size);
      if (shipped && shipped.root !== root) {
        return { seq: 1, code: 'agent.rollback', message: `root at size ${cp.size} differs from the checkpoint sink ${shipped.sink} shipped (log rewritten or rolled back)` };
      }
      this.vouched = Math.max(this.vouched, cp.size);
      const rec: CheckpointRecord = { size: cp.size, root, note: cp.note, verifierKey: this.verifierKey };
      if (this.witness) {
        rec.cosignature = cosign(this.witness, cp.note);
        rec.witnessKey = this.witness.verifierKey;
      }
      out.push(rec);
    }
    // Shipped roots at sizes with no stored checkpoint left (deleted): compare when passing them.
    const shipped = this.shipped.roots.get(this.chain.size);
    if (shipped && shipped.root !== this.chain.root().toString('base64')) {
      return { seq: 1, code: 'agent.rollback', message: `root at size ${this.chain.size} differs from the checkpoint sink ${shipped.sink} shipped (log rewritten or rolled back)` };
    }
    return null;
  }

  /** A verifier at `size` (< current), rebuilt from the nearest earlier snapshot and the stored events. */
  private replayTo(db: Db, size: number): ChainVerifier | Fault {
    let snap = this.ring[0];
    for (const s of this.ring) if (s.size <= size && s.size >= snap.size) snap = s;
    if (snap.size > size) return { seq: size + 1, code: 'agent.bad_checkpoint', message: `checkpoint at size ${size} is older than where verification resumed (${snap.size})` };
    const v = new ChainVerifier(snap);
    const rows = db.prepare('SELECT seq, body, prev, hash, leaf FROM events WHERE seq > ? AND seq <= ? ORDER BY seq').iterate(snap.size, size) as Iterable<Row>;
    for (const r of rows) {
      const h = v.feed(r.seq, r.body, r);
      if (isFault(h)) return h;
    }
    return v.size === size ? v : { seq: v.size + 1, code: 'agent.gap', message: `events up to ${size} are missing` };
  }
}
