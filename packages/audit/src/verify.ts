/**
 * verifyLog: one streaming pass over the store that re-derives every hash and compares it
 * with what was signed. Reports the lowest sequence number that is not proven good.
 */
import { canonicalJson } from './canonical.js';
import { EMPTY_ROOT, hashEvent, ZERO_HASH } from './hashing.js';
import { Frontier } from './merkle.js';
import { openCheckpoint, parseVerifierKey, type Checkpoint, type NoteKey } from './note.js';
import { readVerifierKey } from './read.js';
import { hasSessionIndex, openReadOnly, readMeta, SESSION_INDEXED, subjectOf, timeMs, type Db, type EventRow } from './store.js';

export interface VerifyReport {
  ok: boolean;
  /** Events verified (the whole log when ok; the good prefix otherwise). */
  size: number;
  /** Base64 RFC 6962 root over `size` events. */
  root: string;
  /** Stored checkpoints whose signature and root were checked. */
  checkpoints: number;
  /** Lowest seq that is not proven good. */
  firstBadSeq?: number;
  reason?: string;
}

export interface VerifyOptions {
  /** An earlier signed checkpoint kept outside the log: detects truncation and rollback. */
  checkpoint?: string;
  /** Trusted note verifier key; default: data_dir/audit-key.pub. Pass your own copy to not trust the disk. */
  verifierKey?: string;
}

class Bad extends Error {
  constructor(
    readonly seq: number | undefined,
    readonly reason: string,
  ) {
    super(reason);
  }
}

interface CheckpointRow {
  id: number;
  size: number;
  note: string;
}

export function verifyLog(dataDir: string, opts: VerifyOptions = {}): VerifyReport {
  const emptyRoot = EMPTY_ROOT.toString('base64');
  const fail = (reason: string): VerifyReport => ({ ok: false, size: 0, root: emptyRoot, checkpoints: 0, reason });
  const keyText = opts.verifierKey ?? readVerifierKey(dataDir);
  if (!keyText) return fail('no verifier key (audit-key.pub missing and none given)');
  const key = parseVerifierKey(keyText);
  if (!key.ok) return fail(`verifier key: ${key.error.message}`);
  // Checkpoints are read on their own connection, its snapshot taken before the events'
  // one: the writer commits events before the checkpoint covering them, so every
  // checkpoint seen is covered by the events seen, even while the gateway runs.
  const cpDb = openReadOnly(dataDir);
  if (!cpDb) return fail(`no audit log in ${dataDir}`);
  const evDb = openReadOnly(dataDir)!;
  try {
    cpDb.exec('BEGIN');
    cpDb.prepare('SELECT count(*) FROM checkpoints').get();
    evDb.exec('BEGIN');
    return new Verifier(evDb, cpDb, key.value, opts.checkpoint).run();
  } finally {
    cpDb.close();
    evDb.close();
  }
}

class Verifier {
  private readonly frontier = new Frontier();
  private prev: Buffer = ZERO_HASH;
  private prevHex = ZERO_HASH.toString('hex');
  private checked = 0;
  /** Largest checkpoint size whose signature and root held. */
  private goodSize = 0;
  private readonly cps: Iterator<CheckpointRow>;
  private cp: CheckpointRow | undefined;
  private readonly origin: string;
  private trusted: Checkpoint | null = null;
  private trustedRoot: Buffer | null = null;

  constructor(
    private readonly evDb: Db,
    cpDb: Db,
    private readonly key: NoteKey,
    private readonly trustedNote: string | undefined,
  ) {
    this.origin = readMeta(evDb, 'origin')?.toString('utf8') ?? '';
    this.cps = (cpDb.prepare('SELECT id, size, note FROM checkpoints ORDER BY size, id').iterate() as Iterable<CheckpointRow>)[Symbol.iterator]();
    this.cp = this.nextCp();
  }

  run(): VerifyReport {
    try {
      this.openTrusted();
      this.checkpointsAt(0);
      let expected = 1;
      const rows = this.evDb.prepare('SELECT seq, time, kind, connector, session, subject, body, prev, hash, leaf FROM events ORDER BY seq').iterate() as Iterable<EventRow>;
      for (const row of rows) {
        this.checkEvent(row, expected);
        expected++;
        this.checkpointsAt(row.seq);
      }
      this.checkTail();
      this.checkSessionIndex();
      return { ok: true, size: this.frontier.size, root: this.frontier.root().toString('base64'), checkpoints: this.checked };
    } catch (e) {
      if (!(e instanceof Bad)) throw e;
      return {
        ok: false,
        size: this.frontier.size,
        root: this.frontier.root().toString('base64'),
        checkpoints: this.checked,
        ...(e.seq !== undefined ? { firstBadSeq: e.seq } : {}),
        reason: e.reason,
      };
    } finally {
      // An unfinished iterator keeps its connection busy and unclosable.
      this.cps.return?.();
    }
  }

  private openTrusted(): void {
    if (this.trustedNote === undefined) return;
    const c = openCheckpoint(this.trustedNote, this.key);
    if (!c.ok) throw new Bad(undefined, `trusted checkpoint: ${c.error.message}`);
    if (c.value.origin !== this.origin) throw new Bad(undefined, `trusted checkpoint is for origin "${c.value.origin}", the log is "${this.origin}"`);
    this.trusted = c.value;
    if (c.value.size === 0) this.trustedRoot = EMPTY_ROOT;
  }

  private checkEvent(row: EventRow, expected: number): void {
    const seq = expected;
    if (row.seq !== expected) {
      throw new Bad(seq, row.seq > expected ? `event ${expected} is missing (next stored is ${row.seq})` : `event ${row.seq} is out of order`);
    }
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(row.body) as Record<string, unknown>;
    } catch {
      throw new Bad(seq, `event ${seq}: stored body is not JSON`);
    }
    if (body === null || typeof body !== 'object') throw new Bad(seq, `event ${seq}: stored body is not an object`);
    if (body.seq !== row.seq) throw new Bad(seq, `event ${seq}: hashed body says seq ${String(body.seq)} (events reordered or moved)`);
    const { hash, leaf } = hashEvent(row.prev, row.body);
    if (!hash.equals(row.hash)) throw new Bad(seq, `event ${seq}: hash does not match the event (edited)`);
    if (body.prev !== this.prevHex || !row.prev.equals(this.prev)) {
      // Both rows are self-consistent but do not link: either may have been rewritten.
      throw new Bad(Math.max(1, seq - 1), `chain broken between events ${seq - 1} and ${seq} (prev does not match; one was rewritten)`);
    }
    if (!leaf.equals(row.leaf)) throw new Bad(seq, `event ${seq}: stored leaf hash does not match the event`);
    if (canonicalJson(body) !== row.body) throw new Bad(seq, `event ${seq}: stored body is not canonical JSON`);
    const cols: Array<[string, unknown, unknown]> = [
      ['time', row.time, typeof body.time === 'string' ? timeMs(body.time) : undefined],
      ['kind', row.kind, body.kind],
      ['connector', row.connector, body.connector],
      ['session', row.session, body.session],
      ['subject', row.subject, subjectOf(body)],
    ];
    for (const [name, stored, hashed] of cols) {
      if (stored !== hashed) throw new Bad(seq, `event ${seq}: column ${name} differs from the hashed event (edited)`);
    }
    this.frontier.append(leaf);
    this.prev = row.hash;
    this.prevHex = row.hash.toString('hex');
    if (this.trusted && this.trusted.size === seq) this.trustedRoot = this.frontier.root();
  }

  private nextCp(): CheckpointRow | undefined {
    const r = this.cps.next();
    return r.done ? undefined : r.value;
  }

  /** Every stored checkpoint of exactly this size must be signed and match the tree. */
  private checkpointsAt(size: number): void {
    const vouched = this.goodSize;
    const firstBad = size === 0 ? undefined : Math.min(vouched + 1, size);
    let root: Buffer | null = null;
    while (this.cp && this.cp.size <= size) {
      const cp = this.cp;
      const c = this.openStored(cp, firstBad);
      if (cp.size !== size) throw new Bad(firstBad, `checkpoint ${cp.id} has size ${cp.size}, which no tree size matches`);
      root ??= this.frontier.root();
      if (!c.root.equals(root)) throw new Bad(firstBad, `checkpoint ${cp.id} at size ${size}: signed root does not match the events (forged checkpoint or rewritten log)`);
      this.checked++;
      this.goodSize = size;
      this.cp = this.nextCp();
    }
  }

  private openStored(cp: CheckpointRow, firstBad: number | undefined): Checkpoint {
    const c = openCheckpoint(cp.note, this.key);
    if (!c.ok) throw new Bad(firstBad, `checkpoint ${cp.id} at size ${cp.size}: ${c.error.message}`);
    if (c.value.origin !== this.origin) throw new Bad(firstBad, `checkpoint ${cp.id}: origin "${c.value.origin}" is not the log's "${this.origin}"`);
    if (c.value.size !== cp.size) throw new Bad(firstBad, `checkpoint ${cp.id}: stored size ${cp.size} differs from its signed size ${c.value.size}`);
    return c.value;
  }

  /**
   * The bulk session index (store.ts) is derived data, but a session query trusts it: it may
   * name each event only under the event's own (verified) session column, and must name every
   * event up to `session_indexed` — else a query by session would hide or misattribute events.
   */
  private checkSessionIndex(): void {
    if (!hasSessionIndex(this.evDb)) return;
    const indexed = Number(readMeta(this.evDb, SESSION_INDEXED)?.toString('utf8') ?? 0);
    const size = this.frontier.size;
    if (!Number.isSafeInteger(indexed) || indexed < 0 || indexed > size) {
      throw new Bad(undefined, `session index claims to cover ${String(indexed)} events but the log has ${size}`);
    }
    const stray = this.evDb
      .prepare(
        'SELECT se.seq AS seq FROM session_events se LEFT JOIN events e ON e.seq = se.seq WHERE e.seq IS NULL OR e.session IS NOT se.session OR se.seq > ? ORDER BY se.seq LIMIT 1',
      )
      .get(indexed) as { seq: number } | undefined;
    if (stray) throw new Bad(undefined, `session index: its entry for event ${stray.seq} names another session or no event (edited)`);
    const { n } = this.evDb.prepare('SELECT count(*) AS n FROM session_events').get() as { n: number };
    if (n !== indexed) throw new Bad(undefined, `session index lists ${n} events but claims to cover ${indexed} (entries removed or added)`);
  }

  /** After the last event: anything signed beyond it means events were cut off. */
  private checkTail(): void {
    const size = this.frontier.size;
    if (this.cp) {
      const cp = this.cp;
      this.openStored(cp, size + 1);
      throw new Bad(size + 1, `log truncated: checkpoint ${cp.id} covers ${cp.size} events but the log has ${size}`);
    }
    if (this.trusted) {
      if (this.trusted.size > size) throw new Bad(size + 1, `log truncated: the trusted checkpoint covers ${this.trusted.size} events but the log has ${size}`);
      if (!this.trustedRoot || !this.trustedRoot.equals(this.trusted.root)) {
        throw new Bad(
          1,
          `log rewritten or rolled back: its root at size ${this.trusted.size} differs from the trusted checkpoint (the change lies within events 1..${this.trusted.size})`,
        );
      }
    }
  }
}
