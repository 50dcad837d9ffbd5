/**
 * From measurements to what a reader sees: ratios against direct, the bare relay and the C
 * peer, latency added over direct, the console table, the markdown of docs/benchmarks.md and
 * the data of its latency chart.
 */
import type { GroupCommitResult } from '../postgres/group-commit.js';
import type { LargeResult } from '../postgres/large-results.js';
import type { SshResult } from '../ssh/suite.js';
import type { BenchConfig } from './config.js';
import type { MachineFacts } from './machine.js';
import type { Protocol, TargetResult } from './measure.js';
import { cell, minus, ratio, round, type Latency } from './stats.js';
import type { ChartRow } from './svg.js';

export interface DerivedRow {
  protocol: Protocol;
  target: string;
  kind: TargetResult['kind'];
  unit: string;
  offeredRate: number;
  fixedRate: number;
  cpuUsPerUnit: number | null;
  userUsPerUnit: number | null;
  systemUsPerUnit: number | null;
  offMainUsPerUnit: number | null;
  cpuVsRelay: number | null;
  cpuVsPeer: number | null;
  latency: Latency;
  latencyAdded: Latency | null;
  saturationRate: number;
  vsDirect: number | null;
  vsRelay: number | null;
  vsPeer: number | null;
  errors: number;
}

export interface Summary {
  bench: 'gatehouse';
  config: BenchConfig;
  machine: MachineFacts;
  rows: DerivedRow[];
  groupCommit: GroupCommitResult | null;
  large: LargeResult | null;
  ssh: SshResult | null;
  /** Parts that failed, with their error (the run goes on). */
  failures: Record<string, string>;
  notes: string[];
}

export function derive(results: TargetResult[]): DerivedRow[] {
  return results.map((r) => {
    const same = results.filter((x) => x.protocol === r.protocol);
    const direct = same.find((x) => x.kind === 'direct');
    const relay = same.find((x) => x.target === 'relay');
    const peer = same.find((x) => x.kind === 'peer');
    const l = (x: Latency) => ({ p50: round(x.p50), p99: round(x.p99), p999: round(x.p999) });
    return {
      protocol: r.protocol,
      target: r.target,
      kind: r.kind,
      unit: r.unit,
      offeredRate: r.offeredRate,
      fixedRate: r.fixed.rate,
      cpuUsPerUnit: r.fixed.cpuUsPerUnit,
      userUsPerUnit: r.fixed.userUsPerUnit,
      systemUsPerUnit: r.fixed.systemUsPerUnit,
      offMainUsPerUnit: r.fixed.offMainUsPerUnit,
      cpuVsRelay: r.kind === 'direct' ? null : ratio(r.fixed.cpuUsPerUnit, relay?.fixed.cpuUsPerUnit),
      cpuVsPeer: r.kind === 'direct' ? null : ratio(r.fixed.cpuUsPerUnit, peer?.fixed.cpuUsPerUnit),
      latency: l(r.fixed.latency),
      latencyAdded: direct && r.kind !== 'direct' ? l(minus(r.fixed.latency, direct.fixed.latency)) : null,
      saturationRate: r.saturation.rate,
      vsDirect: ratio(r.saturation.rate, direct?.saturation.rate),
      vsRelay: ratio(r.saturation.rate, relay?.saturation.rate),
      vsPeer: ratio(r.saturation.rate, peer?.saturation.rate),
      errors: r.fixed.errors + r.saturation.errors,
    };
  });
}

const x = (n: number | null) => (n === null ? '—' : `${n.toFixed(2)}×`);
const ms = (n: number) => cell(n, 3);

export function mainTable(rows: DerivedRow[]): string {
  const head =
    '| protocol | target | rate at fixed load /s | CPU µs/unit (user + sys) | of which off the main thread | CPU × relay | CPU × C peer | added p50 / p99 / p99.9 ms | saturation /s | × direct | × relay | × C peer | errors |\n' +
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n';
  return (
    head +
    rows
      .map((r) => {
        const cpu = r.cpuUsPerUnit === null ? '—' : `${cell(r.cpuUsPerUnit, 1)} (${cell(r.userUsPerUnit, 1)} + ${cell(r.systemUsPerUnit, 1)})`;
        // Only Gatehouse has threads of its own off the data path (audit writer, fsyncs).
        const offMain = r.kind === 'gatehouse' && r.offMainUsPerUnit !== null ? cell(r.offMainUsPerUnit, 1) : '—';
        const added = r.latencyAdded
          ? `${ms(r.latencyAdded.p50)} / ${ms(r.latencyAdded.p99)} / ${ms(r.latencyAdded.p999)}`
          : `(${ms(r.latency.p50)} / ${ms(r.latency.p99)} / ${ms(r.latency.p999)})`;
        // Under 90 % of the offered rate: the target saturated, and its "latency" is queueing.
        const sat = r.fixedRate < 0.9 * r.offeredRate ? ' ⚠' : '';
        return `| ${r.protocol} | ${r.target} | ${cell(r.fixedRate)}${sat} | ${cpu} | ${offMain} | ${x(r.cpuVsRelay)} | ${x(r.cpuVsPeer)} | ${added} | ${cell(r.saturationRate)} | ${x(r.vsDirect)} | ${x(r.vsRelay)} | ${x(r.vsPeer)} | ${r.errors} |`;
      })
      .join('\n') +
    '\n'
  );
}

export function groupCommitTable(g: GroupCommitResult): string {
  return (
    '| clients | statements/s | audit events/s | commits/s | events/commit | fsyncs/s | events/fsync | fsync ms mean / p99 | share of time in fsync | statement p50 / p99 ms | errors |\n' +
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n' +
    g.rows
      .map(
        (r) =>
          `| ${r.clients} | ${cell(r.statementsPerSec)} | ${cell(r.eventsPerSec)} | ${cell(r.commitsPerSec)} | ${cell(r.eventsPerCommit, 1)} | ${cell(r.syncsPerSec)} | ${cell(r.eventsPerSync, 1)} | ${ms(r.syncMsMean ?? NaN)} / ${ms(r.syncMsP99 ?? NaN)} | ${fsyncShare(r)} | ${ms(r.latency.p50)} / ${ms(r.latency.p99)} | ${r.errors} |`,
      )
      .join('\n') +
    '\n'
  );
}

/** fsyncs/s × mean fsync time: near 100 % the writer is disk-bound; well under it, something else bounds strict throughput. */
function fsyncShare(r: GroupCommitResult['rows'][number]): string {
  return r.syncsPerSec !== null && r.syncMsMean !== null ? `${Math.round((r.syncsPerSec * r.syncMsMean) / 10)} %` : '—';
}

export function largeTable(l: LargeResult): string {
  return (
    `| target | rows | seconds | rows/s | × direct | emails in clear | client CPU share | gateway RSS before / peak before / peak after MiB |\n|---|---:|---:|---:|---:|---:|---:|---:|\n` +
    `| direct | ${cell(l.direct.rows)} | ${cell(l.direct.seconds, 2)} | ${cell(l.direct.rowsPerSec)} | 1.00× | ${cell(l.direct.clearEmails)} | ${cell(l.direct.clientCpuShare, 2)} | — |\n` +
    `| Gatehouse (masking on) | ${cell(l.gatehouse.rows)} | ${cell(l.gatehouse.seconds, 2)} | ${cell(l.gatehouse.rowsPerSec)} | ${x(l.ratio)} | ${cell(l.gatehouse.clearEmails)} | ${cell(l.gatehouse.clientCpuShare, 2)} | ${cell(l.gatewayRssBeforeMiB, 1)} / ${cell(l.gatewayPeakRssBeforeMiB, 1)} / ${cell(l.gatewayPeakRssMiB, 1)} |\n`
  );
}

export function sshTables(s: SshResult): string {
  if (s.skipped) return `Skipped: ${s.skipped}\n`;
  const scp =
    `| scp protocol | direction | direct MB/s | Gatehouse MB/s | × direct | gateway CPU ms/MB |\n|---|---|---:|---:|---:|---:|\n` +
    s.scp.map((r) => `| ${r.protocol} | ${r.direction} | ${cell(r.directMBps, 1)} | ${cell(r.gatewayMBps, 1)} | ${x(r.ratio)} | ${cell(r.gatewayCpuMsPerMB, 2)} |`).join('\n') +
    '\n';
  const c = (v: SshResult['directConnectMs']) => `${cell(v.mean, 1)} | ${cell(v.p50, 1)} | ${cell(v.p99, 1)}`;
  const conn =
    `| ${s.connects} × \`ssh host true\` | mean ms | p50 ms | p99 ms |\n|---|---:|---:|---:|\n| direct | ${c(s.directConnectMs)} |\n| Gatehouse | ${c(s.gatewayConnectMs)} |\n` +
    `\nConnection time through the gateway: ${x(s.connectRatio)} direct.\n`;
  return `${scp}\n${conn}`;
}

/** The chart: every proxy's latency added over direct (direct itself adds nothing). */
export function chartRows(rows: DerivedRow[]): ChartRow[] {
  return rows.filter((r) => r.latencyAdded).map((r) => ({ label: `${r.protocol} · ${r.target}`, ...(r.latencyAdded as Latency) }));
}

/** The targets, checked against this run's figures (null: not measured). */
export function targetChecks(s: Summary): { target: string; value: string; met: boolean | null }[] {
  const find = (p: Protocol, t: string) => s.rows.find((r) => r.protocol === p && r.target === t);
  const out: { target: string; value: string; met: boolean | null }[] = [];
  const check = (target: string, v: number | null | undefined, ok: (v: number) => boolean, fmt = (v: number) => v.toFixed(2)) =>
    out.push({ target, value: v === null || v === undefined || !Number.isFinite(v) ? '—' : fmt(v), met: v === null || v === undefined || !Number.isFinite(v) ? null : ok(v) });
  check(
    '#9 PostgreSQL CPU per statement, full ≤ 2 × bare relay',
    find('postgres', 'gatehouse-full')?.cpuVsRelay,
    (v) => v <= 2,
    (v) => `${v.toFixed(2)}×`,
  );
  check(
    '#9 PostgreSQL CPU per statement, passthrough ≤ 2 × bare relay',
    find('postgres', 'gatehouse-passthrough')?.cpuVsRelay,
    (v) => v <= 2,
    (v) => `${v.toFixed(2)}×`,
  );
  const naive = find('http', 'node-http-undici')?.cpuUsPerUnit;
  const ghHttp = find('http', 'gatehouse-full')?.cpuUsPerUnit;
  check(
    '#9 HTTP CPU per request, full ≤ 1.5 × node:http + undici',
    ratio(ghHttp, naive),
    (v) => v <= 1.5,
    (v) => `${v.toFixed(2)}×`,
  );
  check(
    '#9 HTTP CPU per request, passthrough ≤ 1.5 × node:http + undici',
    ratio(find('http', 'gatehouse-passthrough')?.cpuUsPerUnit, naive),
    (v) => v <= 1.5,
    (v) => `${v.toFixed(2)}×`,
  );
  check(
    '#9 pgbench -S c8 passthrough ≥ 0.85 × bare relay',
    find('postgres', 'gatehouse-passthrough')?.vsRelay,
    (v) => v >= 0.85,
    (v) => `${v.toFixed(2)}×`,
  );
  check(
    '#9 pgbench -S c8 passthrough ≥ pgbouncer',
    find('postgres', 'gatehouse-passthrough')?.vsPeer,
    (v) => v >= 1,
    (v) => `${v.toFixed(2)}×`,
  );
  check(
    '#9 HTTP passthrough ≥ nginx',
    find('http', 'gatehouse-passthrough')?.vsPeer,
    (v) => v >= 1,
    (v) => `${v.toFixed(2)}×`,
  );
  for (const p of ['postgres', 'http', 'mysql'] as const) {
    check(
      `#9 ${p} p99 added ≤ 0.5 ms (full, fixed rate)`,
      find(p, 'gatehouse-full')?.latencyAdded?.p99,
      (v) => v <= 0.5,
      (v) => `${v.toFixed(3)} ms`,
    );
  }
  const c32 = s.groupCommit?.rows.find((r) => r.clients === 32);
  check(
    '#9 strict, 32 clients > 15k statements/s',
    c32?.statementsPerSec,
    (v) => v > 15_000,
    (v) => `${Math.round(v)}/s`,
  );
  check(
    '#9 1M-row SELECT with masking ≥ 0.5 × direct rows/s',
    s.large?.ratio,
    (v) => v >= 0.5,
    (v) => `${v.toFixed(2)}×`,
  );
  for (const r of s.ssh?.scp ?? [])
    check(
      `#11 scp ${r.protocol} ${r.direction} ≥ 0.6 × direct`,
      r.ratio,
      (v) => v >= 0.6,
      (v) => `${v.toFixed(2)}×`,
    );
  check(
    '#11 ssh connection time ≤ 2 × direct',
    s.ssh?.connectRatio,
    (v) => v <= 2,
    (v) => `${v.toFixed(2)}×`,
  );
  return out;
}
