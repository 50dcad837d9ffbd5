/**
 * The agent: one reader verifying the local log into a bounded in-memory window, one loop
 * per sink shipping that window at its own pace with its own durable cursor. The reader
 * never runs more than `read_ahead` events ahead of the slowest sink (back-pressure); a
 * failed write is retried with back-off and jitter, forever — a sink down for an hour
 * catches up from its cursor. A verification failure or a contradiction at a sink halts
 * shipping everywhere and raises an alert (decisions 0800, 0801).
 */
import { dirname, join, resolve } from 'node:path';
import type { Server } from 'node:http';
import { parseVerifierKey, readVerifierKey, type NoteKey } from '@gatehouse/audit';
import type { AgentConfig, GatehouseConfig } from '@gatehouse/core';
import type { ChainState, Fault } from './chain.js';
import { loadCursor, saveCursor, type Cursor } from './cursor.js';
import { jsonLogger, type AgentLogger } from './log.js';
import { AgentMetrics, serveMetrics } from './metrics.js';
import { LogReader, type ReadBatch, type Shipped } from './reader.js';
import type { AlertRecord, SinkBatch } from './records.js';
import { backoff, sleep } from './retry.js';
import { makeSinks, SinkConflict, type Sink } from './sinks/index.js';
import { ensureDir, readDurable, writeDurable } from './state-file.js';
import { verifyInWorker } from './verify-worker.js';
import { Wake } from './wake.js';
import { loadOrCreateWitness, type Witness } from './witness.js';

export interface AgentOptions {
  logger?: AgentLogger;
  /** Progress line on stderr (default: when stderr is a TTY). */
  progress?: boolean;
}

export interface RunningAgent {
  readonly metrics: AgentMetrics;
  /** host:port of /metrics, when agent.metrics_listen is set. */
  readonly metricsAddress: string | null;
  /** The fault that stopped shipping, once halted. */
  halted(): AlertRecord | null;
  stop(): Promise<void>;
}

interface Buffered extends ReadBatch {
  id: number;
}

/** Pinned once per state_dir: which gateway this is and which key its checkpoints must carry. */
interface Pinned {
  gateway_id: string;
  verifier_key: string;
}

const RETRY_BASE_MS = 200;
/** Alerts are best effort: a bounded number of tries per sink, then the halt stands on its own (log, metric). */
const ALERT_ATTEMPTS = 5;
const MAX_BUFFERED_BATCHES = 4096;

export async function startAgent(cfg: GatehouseConfig, opts: AgentOptions = {}): Promise<RunningAgent> {
  const ac = cfg.agent;
  if (!ac) throw new Error('no agent block in the configuration (agent.sinks is required)');
  const log = opts.logger ?? jsonLogger();
  const baseDir = dirname(resolve(cfg.source));
  const stateDir = resolve(baseDir, ac.state_dir ?? join(cfg.data_dir, 'agent'));
  ensureDir(stateDir);
  const sinks = makeSinks(ac.sinks, baseDir);
  if (ac.witness_name && !ac.witness_key) throw new Error('agent.witness_name needs agent.witness_key');
  const witness = ac.witness_key ? loadOrCreateWitness(resolve(baseDir, ac.witness_key), ac.witness_name ?? `gatehouse-agent/${cfg.gateway_id}`) : null;
  const stop = new AbortController();
  const pinned = await pinKey(cfg, ac, stateDir, log, stop.signal);
  const agent = new Agent(cfg, ac, stateDir, sinks, pinned, witness, log, stop);
  await agent.start(opts.progress ?? process.stderr.isTTY);
  return agent;
}

/** TOFU unless configured: the key of the first start is kept; a later different key is refused. */
async function pinKey(
  cfg: GatehouseConfig,
  ac: AgentConfig,
  stateDir: string,
  log: AgentLogger,
  signal: AbortSignal,
): Promise<{ text: string; key: NoteKey; current: string | null }> {
  const path = join(stateDir, 'pinned.json');
  const prior = readDurable<Pinned>(path);
  if (prior && prior.gateway_id !== cfg.gateway_id) throw new Error(`${stateDir} belongs to gateway_id "${prior.gateway_id}", the configuration says "${cfg.gateway_id}"`);
  if (prior && ac.verifier_key && prior.verifier_key !== ac.verifier_key) throw new Error(`agent.verifier_key differs from the key pinned in ${path}`);
  let text = ac.verifier_key ?? prior?.verifier_key ?? readVerifierKey(cfg.data_dir);
  for (let n = 0; !text && !signal.aborted; n++) {
    if (n === 0) log.log('info', 'waiting for the gateway to create its audit log (audit-key.pub)', { dataDir: cfg.data_dir });
    await sleep(ac.poll_interval * 5, signal);
    text = readVerifierKey(cfg.data_dir);
  }
  if (!text) throw new Error('stopped before the audit log appeared');
  const key = parseVerifierKey(text);
  if (!key.ok) throw new Error(`verifier key: ${key.error.message}`);
  if (!prior) writeDurable(path, { gateway_id: cfg.gateway_id, verifier_key: text } satisfies Pinned);
  return { text, key: key.value, current: readVerifierKey(cfg.data_dir) };
}

class Agent implements RunningAgent {
  readonly metrics: AgentMetrics;
  metricsAddress: string | null = null;
  private server: Server | null = null;
  private readonly cursors = new Map<string, Cursor>();
  /** Next batch id each sink will look at. */
  private readonly next = new Map<string, number>();
  private buffer: Buffered[] = [];
  private nextId = 1;
  private reader!: LogReader;
  private alert: AlertRecord | null = null;
  private readonly halt$ = new AbortController();
  /** Aborted on stop or halt: ends every wait at once. */
  private readonly end$: AbortSignal;
  private readonly wake = new Wake();
  private loops: Promise<void>[] = [];
  private progressTimer: NodeJS.Timeout | null = null;
  private latestNote: string | null = null;

  constructor(
    private readonly cfg: GatehouseConfig,
    private readonly ac: AgentConfig,
    private readonly stateDir: string,
    private readonly sinks: Sink[],
    private readonly pinned: { text: string; key: NoteKey; current: string | null },
    private readonly witness: Witness | null,
    private readonly log: AgentLogger,
    private readonly stop$: AbortController,
  ) {
    this.metrics = new AgentMetrics(cfg.gateway_id);
    this.end$ = AbortSignal.any([stop$.signal, this.halt$.signal]);
  }

  halted(): AlertRecord | null {
    return this.alert;
  }

  /** Either signal ends the loops: a stop (SIGTERM) or a halt. */
  private get ending(): boolean {
    return this.stop$.signal.aborted || this.halt$.signal.aborted;
  }

  async start(progress: boolean): Promise<void> {
    if (this.ac.metrics_listen) {
      const m = await serveMetrics(this.metrics, this.ac.metrics_listen);
      this.server = m.server;
      this.metricsAddress = m.address;
      this.log.log('info', 'metrics listening', { address: m.address });
    }
    const shipped: Shipped = { hashes: new Map(), roots: new Map() };
    let from: ChainState | null = null;
    for (const s of this.sinks) {
      const c = loadCursor(this.stateDir, s.name, this.cfg.gateway_id);
      this.cursors.set(s.name, c);
      this.next.set(s.name, 0);
      const st = this.metrics.sink(s.name);
      st.shippedSeq = c.state.size;
      if (c.state.size > 0) shipped.hashes.set(c.state.size, { hash: c.state.hash, sink: s.name });
      if (c.checkpoint) {
        shipped.roots.set(c.checkpoint.size, { root: c.checkpoint.root, sink: s.name });
        if (!this.latestNote || c.checkpoint.size >= this.noteSize(this.latestNote)) this.latestNote = c.checkpoint.note;
      }
      if (!from || c.state.size < from.size) from = c.state;
    }
    this.reader = new LogReader(this.cfg.data_dir, this.pinned.key, this.pinned.text, from!, shipped, this.witness);
    this.log.log('info', 'agent starting', {
      gatewayId: this.cfg.gateway_id,
      dataDir: this.cfg.data_dir,
      resumeAt: from!.size,
      ...(this.witness ? { witnessKey: this.witness.verifierKey } : {}),
      sinks: this.sinks.map((s) => ({ name: s.name, type: s.type, target: s.target, cursor: this.cursors.get(s.name)!.state.size })),
    });
    if (this.pinned.current && this.pinned.current !== this.pinned.text) {
      this.raise({
        seq: 1,
        code: 'agent.key_changed',
        message: `audit-key.pub is now ${this.pinned.current}, the pinned key is ${this.pinned.text} (key replaced: history may be re-signed)`,
      });
    } else {
      await this.fullVerify();
    }
    if (progress) this.progressTimer = setInterval(() => this.printProgress(), 1000).unref();
    this.loops = [this.readLoop(), ...this.sinks.map((s) => this.sinkLoop(s))];
  }

  private noteSize(note: string): number {
    return Number(note.split('\n')[1]);
  }

  /** The whole local log against the newest checkpoint shipped anywhere (rewrite / truncation after shipping). */
  private async fullVerify(): Promise<void> {
    let r;
    try {
      r = await verifyInWorker(this.cfg.data_dir, { verifierKey: this.pinned.text, ...(this.latestNote ? { checkpoint: this.latestNote } : {}) }, this.end$);
    } catch (e) {
      if (this.ending) return;
      throw e;
    }
    if (r.ok) {
      this.log.log('info', 'local audit log verified', { size: r.size, checkpoints: r.checkpoints });
      return;
    }
    // No log yet is not a fault; the reader waits for it.
    if (/no audit log/.test(r.reason ?? '')) return;
    this.raise({
      seq: r.firstBadSeq ?? 1,
      code: /truncated|rolled back|rewritten/.test(r.reason ?? '') ? 'agent.rollback' : 'agent.bad_hash',
      message: r.reason ?? 'verification failed',
    });
  }

  private async readLoop(): Promise<void> {
    let lastReverify = Date.now();
    let reverifying: Promise<void> | null = null;
    let lastLocal = 0;
    while (!this.ending) {
      try {
        if (Date.now() - lastLocal > 1000) {
          this.metrics.localSeq = this.reader.localSize();
          lastLocal = Date.now();
        }
        // In a worker, beside shipping; the next one is due an interval after this one ends.
        if (this.ac.reverify_interval > 0 && !reverifying && Date.now() - lastReverify > this.ac.reverify_interval) {
          reverifying = this.fullVerify()
            .catch((e: unknown) => this.log.log('warn', 'periodic re-verification could not run', { error: (e as Error).message }))
            .finally(() => {
              lastReverify = Date.now();
              reverifying = null;
            });
        }
        const slowest = Math.min(...[...this.cursors.values()].map((c) => c.state.size));
        if (this.reader.size - slowest >= this.ac.read_ahead || this.buffer.length >= MAX_BUFFERED_BATCHES) {
          await this.wake.wait(this.ac.poll_interval, this.end$);
          continue;
        }
        const r = this.reader.poll(Math.min(this.ac.batch_size, this.ac.read_ahead - (this.reader.size - slowest)));
        if (r === null) {
          await sleep(this.ac.poll_interval, this.end$);
          continue;
        }
        if ('code' in r) {
          this.raise(r);
          break;
        }
        this.buffer.push({ ...r, id: this.nextId++ });
        if (r.checkpoints.length) this.latestNote = r.checkpoints.at(-1)!.note;
        this.metrics.verifiedSeq = r.end.size;
        this.metrics.localSeq = Math.max(this.metrics.localSeq, r.end.size);
        this.metrics.bufferedEvents += r.events.length;
        this.wake.notify();
        // Verification is synchronous: yield so that sink I/O (acks, commits) interleaves with the next batch.
        await new Promise((resolve) => setImmediate(resolve));
      } catch (e) {
        // SQLite busy / I/O: the log itself is not shown bad; retry after a pause.
        this.log.log('warn', 'reading the local audit log failed; retrying', { error: (e as Error).message });
        this.reader.close();
        await sleep(this.ac.poll_interval * 5, this.end$);
      }
    }
  }

  /** The next batch holding anything this sink has not shipped. */
  private pick(sink: string): Buffered | undefined {
    const cur = this.cursors.get(sink)!.state.size;
    const from = this.next.get(sink)!;
    const take: Buffered[] = [];
    let events = 0;
    for (const b of this.buffer) {
      if (b.id < from) continue;
      if (b.end.size > cur || (b.events.length === 0 && b.end.size >= cur)) {
        // Consecutive batches are merged up to batch_size events: a sink that is behind (or
        // a reader that polls small batches under a steady load) pays the per-write fixed cost
        // (commit, acks, cursor fsync) once per batch_size events, not once per poll.
        if (take.length && events + b.events.length > this.ac.batch_size) break;
        take.push(b);
        events += b.events.length;
      } else if (!take.length) this.next.set(sink, b.id + 1);
    }
    if (take.length <= 1) return take[0];
    const last = take.at(-1)!;
    return { id: last.id, end: last.end, readAt: take[0].readAt, events: take.flatMap((b) => b.events), checkpoints: take.flatMap((b) => b.checkpoints) };
  }

  private async sinkLoop(sink: Sink): Promise<void> {
    const st = this.metrics.sink(sink.name);
    let open = false;
    let failures = 0;
    // A failed batch is re-sent as it was (same content, same Idempotency-Key), not re-merged.
    let retry: Buffered | undefined;
    while (!this.ending) {
      const b = retry ?? this.pick(sink.name);
      retry = undefined;
      if (!b) {
        st.oldestPendingAt = 0;
        await this.wake.wait(this.ac.poll_interval, this.end$);
        continue;
      }
      st.oldestPendingAt = b.readAt;
      const cursor = this.cursors.get(sink.name)!;
      const batch: SinkBatch = {
        gatewayId: this.cfg.gateway_id,
        verifierKey: this.pinned.text,
        events: (b.events[0]?.seq ?? 0) > cursor.state.size ? b.events : b.events.filter((e) => e.seq > cursor.state.size),
        checkpoints: b.checkpoints.filter((c) => c.size >= cursor.state.size),
      };
      try {
        if (!open) {
          await sink.open(cursor.position ?? null);
          open = true;
        }
        await sink.write(batch);
      } catch (e) {
        if (e instanceof SinkConflict) {
          this.raise({ seq: e.seq, code: 'agent.conflict', message: `sink ${sink.name}: ${e.message}` });
          break;
        }
        open = false;
        retry = b;
        st.errors++;
        const delay = backoff(failures++, RETRY_BASE_MS, this.ac.retry_max);
        if (failures === 1 || failures % 10 === 0) {
          this.log.log('warn', 'sink write failed; retrying', { sink: sink.name, target: sink.target, attempt: failures, retryInMs: delay, error: (e as Error).message });
        }
        await sink.close().catch(() => undefined);
        await sleep(delay, this.end$);
        continue;
      }
      if (failures > 0) this.log.log('info', 'sink recovered', { sink: sink.name, afterFailures: failures });
      failures = 0;
      const lastCp = b.checkpoints.at(-1);
      const next: Cursor = {
        gateway_id: this.cfg.gateway_id,
        state: b.end,
        ...(lastCp ? { checkpoint: { size: lastCp.size, root: lastCp.root, note: lastCp.note } } : cursor.checkpoint ? { checkpoint: cursor.checkpoint } : {}),
        position: sink.position(),
      };
      saveCursor(this.stateDir, sink.name, next);
      this.cursors.set(sink.name, next);
      this.next.set(sink.name, b.id + 1);
      st.shippedSeq = b.end.size;
      st.shippedEvents += batch.events.length;
      this.trim();
      this.wake.notify();
    }
    if (this.alert) await this.sendAlert(sink, open);
    await sink.close().catch(() => undefined);
  }

  /** Drops batches every sink is past. */
  private trim(): void {
    const min = Math.min(...this.next.values());
    let drop = 0;
    while (drop < this.buffer.length && this.buffer[drop].id < min) drop++;
    if (!drop) return;
    for (const b of this.buffer.slice(0, drop)) this.metrics.bufferedEvents -= b.events.length;
    this.buffer = this.buffer.slice(drop);
  }

  private raise(f: Fault | (Omit<Fault, 'code'> & { code: string })): void {
    if (this.alert) return;
    this.alert = { time: new Date().toISOString(), code: f.code, seq: f.seq, message: f.message };
    this.metrics.halted = true;
    this.metrics.alerts++;
    if (f.code !== 'agent.conflict' && f.code !== 'agent.key_changed') this.metrics.verificationFailures++;
    this.log.log('error', 'AUDIT SHIPPING HALTED: the local audit log does not verify', { gatewayId: this.cfg.gateway_id, ...this.alert });
    this.halt$.abort();
    this.wake.notify();
  }

  private async sendAlert(sink: Sink, open: boolean): Promise<void> {
    for (let n = 0; n < ALERT_ATTEMPTS && !this.stop$.signal.aborted; n++) {
      try {
        if (!open) {
          await sink.open(this.cursors.get(sink.name)!.position ?? null);
          open = true;
        }
        await sink.alert(this.cfg.gateway_id, this.alert!);
        this.log.log('info', 'alert shipped', { sink: sink.name, code: this.alert!.code });
        return;
      } catch (e) {
        open = false;
        this.log.log('warn', 'could not ship the alert', { sink: sink.name, attempt: n + 1, error: (e as Error).message });
        await sleep(backoff(n, 500, 5000), this.stop$.signal);
      }
    }
  }

  private printProgress(): void {
    const parts = [...this.metrics.sinks].map(([n, s]) => `${n} ${s.shippedSeq}${s.errors ? ` (${s.errors} errors)` : ''}`);
    const head = this.alert ? `HALTED at seq ${this.alert.seq}` : `verified ${this.metrics.verifiedSeq}/${this.metrics.localSeq}`;
    process.stderr.write(`\r\x1b[Kgatehouse agent: ${head} | ${parts.join(' | ')}`);
  }

  async stop(): Promise<void> {
    this.stop$.abort();
    this.wake.notify();
    await Promise.all(this.loops);
    if (this.progressTimer) {
      clearInterval(this.progressTimer);
      process.stderr.write('\n');
    }
    this.reader?.close();
    if (this.server) await new Promise<void>((r) => this.server!.close(() => r()));
    this.log.log('info', 'agent stopped', { shipped: Object.fromEntries([...this.cursors].map(([n, c]) => [n, c.state.size])) });
  }
}
