/**
 * The primary's connection workers: fork them (the first alone, so that whatever a connector
 * creates once in data_dir on its first start — a development certificate, the SSH host key
 * — exists before the others start and read it), feed their audit batches into the one log,
 * relay PostgreSQL cancels to the worker that issued the key, answer /healthz and /metrics
 * with every worker's figures, replace a worker that dies, and stop them all with a drain.
 */
import cluster, { type Worker } from 'node:cluster';
import { fileURLToPath } from 'node:url';
import type { AuditLog } from '@gatehouse/audit';
import type { GatehouseConfig, Logger } from '@gatehouse/core';
import { AuditIntake } from './audit-intake.js';
import { isFromWorker, type FromWorker, type MetricsJson, type ToWorker, type WorkerReport } from './messages.js';

/** A worker that does not answer a /healthz or /metrics request within this long is reported as such. */
const REQUEST_TIMEOUT_MS = 2_000;
/** How long a worker may take to listen (it prepares parsers, compiles rules, binds). */
const START_TIMEOUT_MS = 60_000;
/** After the drain time, how long a stopping worker gets to flush before it is killed. */
const STOP_GRACE_MS = 15_000;
/** The primary's log failing is told to every worker within this long (it also rides on each answer). */
const FAILURE_POLL_MS = 50;
/** Pause before a worker that died is replaced (a crash loop must not spin). */
const RESPAWN_DELAY_MS = 1_000;

/** What /healthz and /metrics see of the workers (admin.ts). */
export interface WorkerView {
  list(): { index: number; pid: number }[];
  /** Each worker's report, or why it gave none. */
  report(): Promise<{ index: number; pid: number; report: WorkerReport | null; error?: string }[]>;
  /** Every worker's registry as JSON; rejects naming a worker that did not answer. */
  metrics(): Promise<MetricsJson[]>;
}

interface Slot {
  index: number;
  worker: Worker;
  intake: AuditIntake;
  requests: Map<number, { resolve(m: FromWorker): void; reject(e: Error): void; timer: NodeJS.Timeout }>;
  told: boolean;
}

export interface PoolOptions {
  config: GatehouseConfig;
  count: number;
  audit: AuditLog;
  logger: Logger;
  logLevel: string;
}

export class WorkerPool implements WorkerView {
  private readonly slots: (Slot | null)[];
  private nextReq = 1;
  private stopping = false;
  private readonly failureWatch: NodeJS.Timeout;
  /** Connector name → bound address, as the first worker reported it (all share the sockets). */
  readonly addresses = new Map<string, string>();

  constructor(private readonly o: PoolOptions) {
    this.slots = new Array<Slot | null>(o.count).fill(null);
    cluster.setupPrimary({ exec: fileURLToPath(new URL('./worker-main.js', import.meta.url)), args: [], serialization: 'advanced' });
    this.failureWatch = setInterval(() => this.tellFailure(), FAILURE_POLL_MS);
    this.failureWatch.unref();
  }

  /** Fork every worker; resolves once all listen, rejects (after stopping them) if one cannot. */
  async start(): Promise<void> {
    try {
      const first = await this.spawn(0);
      for (const [name, address] of first) this.addresses.set(name, address);
      await Promise.all(this.slots.slice(1).map((_, i) => this.spawn(i + 1)));
    } catch (e) {
      await this.stop(0);
      throw e;
    }
  }

  list(): { index: number; pid: number }[] {
    return this.slots.flatMap((s) => (s ? [{ index: s.index, pid: s.worker.process.pid ?? 0 }] : []));
  }

  async report() {
    return Promise.all(
      this.slots.map(async (s, index) => {
        if (!s) return { index, pid: 0, report: null, error: 'not running' };
        const pid = s.worker.process.pid ?? 0;
        try {
          const m = await this.request(s, 'report');
          return { index, pid, report: m.t === 'report' ? m.report : null };
        } catch (e) {
          return { index, pid, report: null, error: (e as Error).message };
        }
      }),
    );
  }

  async metrics(): Promise<MetricsJson[]> {
    return Promise.all(
      this.slots.map(async (s, index) => {
        if (!s) throw new Error(`worker ${index} is not running`);
        const m = await this.request(s, 'metrics');
        return m.t === 'metrics' ? m.metrics : [];
      }),
    );
  }

  /** Every worker drains for up to drainMs and flushes its audit events; the stragglers are killed. */
  async stop(drainMs: number): Promise<void> {
    this.stopping = true;
    const exits = this.slots.map((s) => {
      if (!s || s.worker.isDead()) return Promise.resolve();
      const gone = new Promise<void>((resolve) => s.worker.once('exit', () => resolve()));
      this.send(s, { t: 'stop', drainMs });
      const kill = setTimeout(() => {
        this.o.logger.error({ worker: s.index }, 'worker did not stop in time; killing it');
        s.worker.process.kill('SIGKILL');
      }, drainMs + STOP_GRACE_MS);
      return gone.finally(() => clearTimeout(kill));
    });
    await Promise.all(exits);
    clearInterval(this.failureWatch);
  }

  private spawn(index: number): Promise<[string, string][]> {
    const worker = cluster.fork();
    const slot: Slot = {
      index,
      worker,
      intake: new AuditIntake(
        this.o.audit,
        (m) => this.send(slot, m),
        () => this.tellFailure(),
      ),
      requests: new Map(),
      told: false,
    };
    this.slots[index] = slot;
    const log = this.o.logger.child({ worker: index, pid: worker.process.pid });
    return new Promise((resolve, reject) => {
      let listening = false;
      let settled = false;
      const timer = setTimeout(() => {
        fail(new Error(`worker ${index} did not listen within ${START_TIMEOUT_MS / 1000} s`));
        worker.process.kill('SIGKILL');
      }, START_TIMEOUT_MS);
      const fail = (e: Error) => {
        clearTimeout(timer);
        if (!settled) reject(e);
        settled = true;
      };
      worker.on('message', (m: unknown) => {
        if (!isFromWorker(m)) return;
        if (m.t === 'hello') this.send(slot, { t: 'start', index, config: this.o.config, logLevel: this.o.logLevel });
        else if (m.t === 'listening') {
          clearTimeout(timer);
          listening = settled = true;
          this.tellFailure();
          log.info({ addresses: Object.fromEntries(m.addresses) }, 'connection worker listening');
          resolve(m.addresses);
        } else if (m.t === 'start-failed') fail(new Error(`worker ${index}: ${m.message}`));
        else this.onMessage(slot, m);
      });
      worker.on('exit', (code, signal) => {
        for (const r of slot.requests.values()) {
          clearTimeout(r.timer);
          r.reject(new Error(`worker ${index} exited`));
        }
        slot.requests.clear();
        if (this.slots[index] === slot) this.slots[index] = null;
        // A worker that never listened is not replaced: the start fails instead.
        if (!listening) return fail(new Error(`worker ${index} exited during start (code ${code ?? signal})`));
        if (this.stopping) return;
        // Its connections are gone with it (their sessions end without session.end, as after
        // a crash of a single process); the listeners stay open in the others meanwhile.
        log.error({ code, signal }, 'connection worker died; starting a new one');
        setTimeout(() => {
          if (!this.stopping) this.spawn(index).catch((e: Error) => log.error({ err: e.message }, 'could not replace the connection worker'));
        }, RESPAWN_DELAY_MS).unref();
      });
    });
  }

  private onMessage(slot: Slot, m: FromWorker): void {
    switch (m.t) {
      case 'audit':
        return slot.intake.batch(m.id, m.events, m.detached);
      case 'cancel': {
        // Only to a worker that exists; the owner checks the secret.
        const owner = this.slots[m.owner];
        if (owner) this.send(owner, { t: 'cancel', connector: m.connector, pid: m.pid, secret: m.secret });
        return;
      }
      case 'report':
      case 'metrics': {
        const r = slot.requests.get(m.req);
        if (!r) return;
        slot.requests.delete(m.req);
        clearTimeout(r.timer);
        r.resolve(m);
        return;
      }
      case 'stopped':
        return slot.intake.flush();
    }
  }

  private request(slot: Slot, t: 'report' | 'metrics'): Promise<FromWorker> {
    const req = this.nextReq++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        slot.requests.delete(req);
        reject(new Error(`worker ${slot.index} did not answer within ${REQUEST_TIMEOUT_MS} ms`));
      }, REQUEST_TIMEOUT_MS);
      slot.requests.set(req, { resolve, reject, timer });
      this.send(slot, { t, req });
    });
  }

  /** The audit log failed: every worker refuses from now on (each is told once). */
  private tellFailure(): void {
    const failure = this.o.audit.failure;
    if (!failure) return;
    for (const s of this.slots) {
      if (s && !s.told) {
        s.told = true;
        this.send(s, { t: 'audit-failed', message: failure.message });
      }
    }
  }

  private send(slot: Slot, m: ToWorker): void {
    if (!slot.worker.isConnected()) return;
    slot.worker.send(m, (e: Error | null) => {
      if (e) this.o.logger.warn({ worker: slot.index, err: e.message }, 'message to a connection worker failed');
    });
  }
}
