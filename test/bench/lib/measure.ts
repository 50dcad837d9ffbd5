/**
 * The house method, once for every protocol: per target, a warm-up, then a run at a fixed
 * offered rate below saturation (CPU of the proxy's process tree from /proc divided by the
 * units served, and latency), then a closed-loop run at saturation (throughput).
 */
import type { LoadResult } from './pgbench.js';
import { cpuDelta, cpuOfTree, mainThreadsOfTree } from './proc.js';
import { round, type Latency } from './stats.js';

export type Protocol = 'postgres' | 'http' | 'mysql';
/** direct: no proxy; relay: bare Node relay; peer: the C proxy (pgbouncer, nginx); gatehouse: a Gatehouse mode. */
export type Kind = 'direct' | 'relay' | 'peer' | 'gatehouse';

export interface RunFigures {
  units: number;
  rate: number;
  latency: Latency;
  errors: number;
  /** CPU µs of the proxy per unit (null for direct: there is no proxy). */
  cpuUsPerUnit: number | null;
  userUsPerUnit: number | null;
  systemUsPerUnit: number | null;
  /** Of cpuUsPerUnit, what threads other than the main thread(s) used (Gatehouse: audit writer, fsyncs). */
  offMainUsPerUnit: number | null;
}

export interface TargetResult {
  protocol: Protocol;
  target: string;
  kind: Kind;
  unit: string;
  /** The offered rate of the fixed-rate run. */
  offeredRate: number;
  fixed: RunFigures;
  saturation: RunFigures;
}

export interface Running {
  /** The proxy's process (its tree is measured); null for direct. */
  pid: number | null;
  stop(): Promise<void>;
}

export interface TargetSpec<E> {
  target: string;
  kind: Kind;
  start(): Promise<Running & { endpoint: E }>;
}

export interface LoadSpec<E> {
  protocol: Protocol;
  unit: string;
  offeredRate: number;
  /** Absent: no warm-up (the smoke). */
  warmUp?: (e: E) => Promise<unknown>;
  fixed(e: E): Promise<LoadResult>;
  saturate(e: E): Promise<LoadResult>;
}

async function measured(pid: number | null, load: () => Promise<LoadResult>): Promise<RunFigures> {
  const before = pid ? cpuOfTree(pid) : null;
  const mainBefore = pid ? mainThreadsOfTree(pid) : null;
  const r = await load();
  const used = pid && before ? cpuDelta(before, cpuOfTree(pid)) : null;
  const main = pid && mainBefore ? cpuDelta(mainBefore, mainThreadsOfTree(pid)) : null;
  const per = (us: number | undefined) => (us !== undefined && r.units ? round(us / r.units, 1) : null);
  return {
    units: r.units,
    rate: round(r.rate, 1),
    latency: { p50: round(r.latency.p50), p99: round(r.latency.p99), p999: round(r.latency.p999) },
    errors: r.errors,
    cpuUsPerUnit: used ? per(used.user + used.system) : null,
    userUsPerUnit: used ? per(used.user) : null,
    systemUsPerUnit: used ? per(used.system) : null,
    offMainUsPerUnit: used && main ? per(Math.max(0, used.user + used.system - main.user - main.system)) : null,
  };
}

export async function measureTargets<E>(load: LoadSpec<E>, targets: TargetSpec<E>[], log: (s: string) => void): Promise<TargetResult[]> {
  const out: TargetResult[] = [];
  for (const t of targets) {
    log(`${load.protocol}: ${t.target}`);
    const r = await t.start();
    try {
      // JIT, connection set-up and caches warm before anything is counted.
      if (load.warmUp) await load.warmUp(r.endpoint);
      const fixed = await measured(r.pid, () => load.fixed(r.endpoint));
      const saturation = await measured(r.pid, () => load.saturate(r.endpoint));
      const res: TargetResult = { protocol: load.protocol, target: t.target, kind: t.kind, unit: load.unit, offeredRate: load.offeredRate, fixed, saturation };
      log(`  ${JSON.stringify(res)}`);
      out.push(res);
    } finally {
      await r.stop();
    }
  }
  return out;
}
