/**
 * The writer: the only code that touches the audit store. It owns the DB connection, the
 * sequence, the hash chain and the Merkle frontier, so none of them needs a lock; the main
 * thread only posts batches. Inserts, commits and the fsync after each commit (WalSync) are
 * synchronous by design: this thread is the one place where blocking costs no caller latency,
 * and appends that arrive while it blocks go into the next commit together.
 */
import { mkdirSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import type { AuditEventInput } from '@gatehouse/core';
import { canonicalJson } from './canonical.js';
import { EventHasher, ZERO_HASH } from './hashing.js';
import { loadOrCreateSigningKey, type SigningKey } from './keys.js';
import { Frontier } from './merkle.js';
import { checkpointBody, signNote } from './note.js';
import type { FromWorker, ToWorker, WriterConfig } from './protocol.js';
import { dbPath, DurableMark, readMeta, SCHEMA, SCHEMA_VERSION, SESSION_INDEXED, subjectOf, timeMs, type Db } from './store.js';
import { WalSync } from './wal-sync.js';

/** One event's canonical form may not exceed this (connectors cap what they put in). */
const MAX_EVENT_BYTES = 1024 * 1024;
/** batched: commit early once this many events wait, so the open transaction stays bounded. */
const MAX_UNCOMMITTED = 20_000;
/** How often the writer reports its commit and sync figures to the main thread (metrics). */
const STATS_INTERVAL_MS = 1000;
/** How often new events are added to the session index, in one sorted pass (store.ts). */
const SESSION_INDEX_INTERVAL_MS = 1000;
/** Events indexed per pass at most, so that catching up on a large log never stalls appends. */
const SESSION_INDEX_CHUNK = 20_000;

type Batch = Extract<ToWorker, { t: 'append' }>;

class Writer {
  private readonly db: Db;
  private readonly key: SigningKey;
  private readonly ins: Database.Statement;
  private readonly putMeta: Database.Statement;
  private readonly insCheckpoint: Database.Statement;
  private readonly begin: Database.Statement;
  private readonly commitStmt: Database.Statement;
  private readonly indexSessionsStmt: Database.Statement;
  private seq = 0;
  /** `session_events` is complete through this seq. */
  private sessionIndexed = 0;
  private prev: Buffer = ZERO_HASH;
  private prevHex = ZERO_HASH.toString('hex');
  private frontier = new Frontier();
  private readonly hasher = new EventHasher();
  private queue: Batch[] = [];
  private drainScheduled = false;
  private inTx = false;
  private uncommitted = 0;
  private commitTimer: NodeJS.Timeout | null = null;
  private checkpointTimer: NodeJS.Timeout | null = null;
  private statsTimer: NodeJS.Timeout | null = null;
  private sessionIndexTimer: NodeJS.Timeout | null = null;
  private failed = false;
  /** Makes commits durable off this thread; releases acks and checkpoints once they are. */
  private readonly wal: WalSync<FromWorker>;
  /** How far the log is on disk, for readers that ship it onward (store.ts, DurableMark). */
  private readonly durable: DurableMark;

  constructor(
    private readonly cfg: WriterConfig,
    private readonly post: (m: FromWorker) => void,
  ) {
    mkdirSync(cfg.dataDir, { recursive: true, mode: 0o700 });
    this.db = new Database(dbPath(cfg.dataDir));
    const mode = this.db.pragma('journal_mode = WAL', { simple: true });
    if (mode !== 'wal') throw new Error(`cannot put the audit store in WAL mode (got ${String(mode)})`);
    // NORMAL: a COMMIT does not wait for the disk; WalSync fsyncs the WAL right after it and
    // only then releases what the commit promised (decision 0105).
    this.db.pragma('synchronous = NORMAL');
    this.wal = new WalSync<FromWorker>(
      `${dbPath(cfg.dataDir)}-wal`,
      (msgs) => {
        for (const m of msgs) this.post(m);
      },
      (e) =>
        this.guard(() => {
          throw e;
        }),
      (seq) => this.durable.set(seq),
    );
    this.durable = new DurableMark(cfg.dataDir);
    this.db.exec(SCHEMA);
    this.checkIdentity();
    this.ins = this.db.prepare('INSERT INTO events (seq, time, kind, connector, session, subject, body, prev, hash, leaf) VALUES (?,?,?,?,?,?,?,?,?,?)');
    this.putMeta = this.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value');
    this.insCheckpoint = this.db.prepare('INSERT INTO checkpoints (size, root, time, note) VALUES (?,?,?,?)');
    this.begin = this.db.prepare('BEGIN');
    this.commitStmt = this.db.prepare('COMMIT');
    this.indexSessionsStmt = this.db.prepare('INSERT INTO session_events (session, seq) SELECT session, seq FROM events WHERE seq > ? AND seq <= ? ORDER BY session, seq');
    this.loadState();
    this.key = loadOrCreateSigningKey(cfg.dataDir, cfg.keyName);
  }

  start(): void {
    const note = this.signCheckpoint();
    this.post({ t: 'ready', size: this.seq, verifierKey: this.key.verifierKey, checkpoint: note });
    // Also when idle: a fresh signed time line every interval, so silence is visible.
    this.checkpointTimer = setInterval(() => this.guard(() => this.signCheckpoint()), this.cfg.checkpointIntervalSec * 1000);
    this.statsTimer = setInterval(() => this.postStats(), STATS_INTERVAL_MS);
    this.sessionIndexTimer = setInterval(() => this.guard(() => this.indexSessionsSoon()), SESSION_INDEX_INTERVAL_MS);
    // A log migrated from schema 1 starts with nothing indexed: catch up now, in chunks.
    this.indexSessionsSoon();
  }

  /** One pass now, and the next ones on later turns while a catch-up lasts (appends go between). */
  private indexSessionsSoon(): void {
    if (this.sessionIndexTimer === null || !this.indexSessions()) return;
    setImmediate(() => this.guard(() => this.indexSessionsSoon()));
  }

  /**
   * Adds the events since the last pass to the session index, sorted by session so that each
   * session's part of the index is written once per pass. It rides in the open batched
   * transaction if there is one (committed and synced with it), else commits on its own: the
   * index is derived data, so its rows need no sync promise of their own — a crash takes back
   * rows and `session_indexed` together, and the next pass redoes them. True while more remain.
   */
  private indexSessions(): boolean {
    if (this.sessionIndexed >= this.seq) return false;
    const to = Math.min(this.seq, this.sessionIndexed + SESSION_INDEX_CHUNK);
    const own = !this.inTx;
    if (own) this.begin.run();
    this.indexSessionsStmt.run(this.sessionIndexed, to);
    this.putMeta.run(SESSION_INDEXED, Buffer.from(String(to), 'utf8'));
    if (own) this.commitStmt.run();
    this.sessionIndexed = to;
    return to < this.seq;
  }

  private postStats(): void {
    const s = this.wal.takeStats();
    if (s.commits > 0 || s.syncs > 0) this.post({ t: 'stats', ...s });
  }

  /** Origin and key name are part of every signed checkpoint: they are fixed at creation. */
  private checkIdentity(): void {
    const want: Record<string, string> = { schema: SCHEMA_VERSION, origin: this.cfg.origin, key_name: this.cfg.keyName };
    if (readMeta(this.db, 'schema')?.toString('utf8') === '1') this.migrateFromSchema1();
    for (const [k, v] of Object.entries(want)) {
      const have = readMeta(this.db, k)?.toString('utf8');
      if (have === undefined) this.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)').run(k, Buffer.from(v, 'utf8'));
      else if (have !== v) throw new Error(`audit log ${k} is "${have}" but the configuration says "${v}"; it cannot change`);
    }
  }

  /**
   * Schema 1 kept a per-event index on `session`; schema 2 replaces it with `session_events`
   * (created by SCHEMA, filled by indexSessions from seq 0). The events and their hashes are
   * untouched, so the chain and every signed checkpoint stay valid.
   */
  private migrateFromSchema1(): void {
    this.db.exec('BEGIN');
    this.db.exec('DROP INDEX IF EXISTS events_session');
    this.db.prepare("UPDATE meta SET value = ? WHERE key = 'schema'").run(Buffer.from(SCHEMA_VERSION, 'utf8'));
    this.db.exec('COMMIT');
  }

  /** Resume sequence, chain and tree from the last committed state. */
  private loadState(): void {
    const last = this.db.prepare('SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1').get() as { seq: number; hash: Buffer } | undefined;
    this.sessionIndexed = Number(readMeta(this.db, SESSION_INDEXED)?.toString('utf8') ?? 0);
    if (!last) return;
    this.seq = last.seq;
    this.prev = last.hash;
    this.prevHex = last.hash.toString('hex');
    // The frontier is saved with each signed checkpoint (not with every commit: one page less
    // per commit); the leaves committed after it are replayed from the leaf column.
    const saved = readMeta(this.db, 'frontier');
    const f = saved ? Frontier.deserialize(saved) : null;
    this.frontier = f && f.size <= last.seq ? f : new Frontier();
    const tail = this.db.prepare('SELECT leaf FROM events WHERE seq > ? ORDER BY seq').iterate(this.frontier.size) as Iterable<{ leaf: Buffer }>;
    for (const row of tail) this.frontier.append(row.leaf);
    if (this.frontier.size !== last.seq) throw new Error(`audit log has gaps: ${this.frontier.size} events but last seq ${last.seq}`);
  }

  onMessage(m: ToWorker): void {
    if (m.t === 'append') {
      if (this.failed) return;
      if (this.cfg.durability === 'strict') {
        // Continuous group commit: everything that queued while the last commit ran goes in the next.
        this.queue.push(m);
        if (!this.drainScheduled) {
          this.drainScheduled = true;
          setImmediate(() => this.guard(() => this.drain()));
        }
      } else {
        this.guard(() => this.acceptBatched(m));
      }
    } else if (m.t === 'size') {
      this.guard(() => this.drain());
      this.post({ t: 'size', id: m.id, size: this.seq });
    } else if (m.t === 'close') {
      this.close();
    }
  }

  private drain(): void {
    this.drainScheduled = false;
    if (this.queue.length === 0 || this.failed) return;
    const q = this.queue;
    this.queue = [];
    const acks: FromWorker[] = [];
    let events = 0;
    this.begin.run();
    for (const b of q) {
      acks.push(this.insertBatch(b));
      events += b.events.length;
    }
    this.commitStmt.run();
    // strict: the acks (and so the callers' replies) wait for the sync that covers this commit.
    this.wal.committed(events, acks, this.seq);
  }

  private acceptBatched(b: Batch): void {
    if (!this.inTx) {
      this.begin.run();
      this.inTx = true;
      // What is left of the window after the main thread's gathering (WriterConfig.windowMs).
      if (this.cfg.windowMs > 1) this.commitTimer = setTimeout(() => this.guard(() => this.commit()), this.cfg.windowMs);
    }
    const ack = this.insertBatch(b);
    this.post(ack);
    this.uncommitted += b.events.length;
    if (this.uncommitted >= MAX_UNCOMMITTED || this.cfg.windowMs <= 1) this.commit();
  }

  private commit(): void {
    if (this.commitTimer) clearTimeout(this.commitTimer);
    this.commitTimer = null;
    if (!this.inTx) return;
    this.commitStmt.run();
    this.inTx = false;
    // batched: acks went out on acceptance; the window's promise is that this sync follows.
    this.wal.committed(this.uncommitted, [], this.seq);
    this.uncommitted = 0;
  }

  /** Assigns seqs, hashes, inserts. Throws only on store errors; bad events are refused one by one. */
  private insertBatch(b: Batch): FromWorker {
    const firstSeq = this.seq + 1;
    let bad: Array<[number, string]> | undefined;
    for (let i = 0; i < b.events.length; i++) {
      const ev = b.events[i] as AuditEventInput & { seq?: number; prev?: string; hash?: string };
      let body: string;
      try {
        if (typeof ev !== 'object' || ev === null) throw new Error('event is not an object');
        if (typeof ev.time !== 'string' || typeof ev.kind !== 'string' || typeof ev.connector !== 'string' || typeof ev.session !== 'string') {
          throw new Error('event needs string time, kind, connector and session');
        }
        delete ev.hash;
        ev.seq = this.seq + 1;
        ev.prev = this.prevHex;
        body = canonicalJson(ev);
        if (body.length > MAX_EVENT_BYTES / 4 && Buffer.byteLength(body) > MAX_EVENT_BYTES) throw new Error('event larger than 1 MiB');
      } catch (e) {
        (bad ??= []).push([i, (e as Error).message]);
        continue;
      }
      const { hash, leaf } = this.hasher.hash(this.prev, body);
      this.ins.run(ev.seq, timeMs(ev.time), ev.kind, ev.connector, ev.session, subjectOf(ev), body, this.prev, hash, leaf);
      this.frontier.append(leaf);
      this.seq++;
      this.prev = hash;
      this.prevHex = hash.toString('hex');
    }
    return bad ? { t: 'ack', id: b.id, firstSeq, bad } : { t: 'ack', id: b.id, firstSeq };
  }

  private signCheckpoint(): string {
    if (this.cfg.durability === 'strict') this.drain();
    else this.commit();
    const time = new Date().toISOString();
    const root = this.frontier.root();
    const note = signNote(checkpointBody(this.cfg.origin, this.seq, root, time), this.key.name, this.key.privateKey, this.key.publicKey);
    this.begin.run();
    this.insCheckpoint.run(this.seq, root, time, note);
    this.putMeta.run('frontier', this.frontier.serialize());
    this.commitStmt.run();
    // Published only once durable: nobody should hold a checkpoint the disk may not have.
    this.wal.committed(0, [{ t: 'checkpoint', note }], this.seq);
    return note;
  }

  /** Final commit and checkpoint, made durable before the store closes. */
  private close(): void {
    if (!this.failed) {
      this.guard(() => {
        this.stopTimers();
        // A stopped gateway leaves a fully indexed log behind (a whole catch-up, if need be).
        while (this.indexSessions()) {
          // the next chunk
        }
        this.signCheckpoint();
      });
      this.guard(() => {
        this.postStats();
        this.wal.close();
        this.durable.close();
        this.db.close();
      });
    }
    this.post({ t: 'closed' });
    parentPort?.close();
  }

  private stopTimers(): void {
    if (this.commitTimer) clearTimeout(this.commitTimer);
    if (this.checkpointTimer) clearInterval(this.checkpointTimer);
    if (this.statsTimer) clearInterval(this.statsTimer);
    if (this.sessionIndexTimer) clearInterval(this.sessionIndexTimer);
    this.commitTimer = this.checkpointTimer = this.statsTimer = this.sessionIndexTimer = null;
  }

  /** Any store error is final: roll back, stop, tell the main thread (which fails closed). */
  private guard(fn: () => void): void {
    if (this.failed) return;
    try {
      fn();
    } catch (e) {
      this.failed = true;
      this.stopTimers();
      try {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
      } catch {
        // The store is already broken; the failure below is what matters.
      }
      try {
        this.wal.close();
        this.durable.close();
        this.db.close();
      } catch {
        // idem
      }
      const x = e as Error & { code?: string };
      this.post({ t: 'failed', message: x.code ? `${x.code}: ${x.message}` : x.message });
    }
  }
}

function main(): void {
  const port = parentPort;
  if (!port) throw new Error('audit writer must run in a worker thread');
  const post = (m: FromWorker) => port.postMessage(m);
  let writer: Writer;
  try {
    writer = new Writer(workerData as WriterConfig, post);
    writer.start();
  } catch (e) {
    const x = e as Error & { code?: string };
    post({ t: 'failed', message: x.code ? `${x.code}: ${x.message}` : x.message });
    port.close();
    return;
  }
  port.on('message', (m: ToWorker) => writer.onMessage(m));
}

main();
