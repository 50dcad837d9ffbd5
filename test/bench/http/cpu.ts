/**
 * HTTP CPU per request at a fixed offered rate, split by thread, in paired bursts: wrk (16
 * connections, paced) against the naive node:http + undici proxy and Gatehouse (its own
 * process; `passthrough`: no rules, no masking, batched audit; `full`: rules, masking, strict
 * audit), small JSON from nginx — the load of `make bench`'s HTTP part.
 *
 * On a shared 2-core machine a whole run drifts by ±10 % with the neighbours' load, more than
 * the changes it should show. So, per mode, every contender (the naive proxy, and Gatehouse
 * from each checkout in CPU_ROOTS) is started and warmed, then measured in short bursts in
 * rotating order (ABC, BCA, CAB, …): each burst's neighbours in time are the other
 * contenders, and ratios are taken burst against burst.
 *
 * CPU is utime + stime from /proc/PID/task/TID/stat: the main thread (TID = PID, the
 * connector's event loop), the busiest other thread — under this load the audit writer (node
 * names no thread; `perf script` shows its frames are packages/audit's writer) — and the rest
 * (libuv pool with the audit's fsyncs and the recordings' writes, V8 platform threads).
 *
 * Run after `npx tsc -b`: node test/dist/bench/http/cpu.js
 * Env: CPU_RATE (800), CPU_SECONDS per burst (5), CPU_BURSTS per contender (6), CPU_MODES
 * (passthrough,full), CPU_ROOTS (comma list of checkouts, built; default this one: the
 * gateway of each is started from its own gateway/bin), CPU_NAIVE=0 to leave the naive proxy out.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { startNginx } from '../../e2e/http/nginx.js';
import { TOKENS } from '../../lib/gateway.js';
import type * as GatehouseLib from '../lib/gatehouse.js';
import { freePort, waitTcp } from '../../lib/net.js';
import { wrk } from '../lib/wrk.js';
import { gatehouseHttpYaml, HTTP_BENCH_BODY, HTTP_BENCH_PATH } from './suite.js';

const RATE = Number(process.env.CPU_RATE ?? 800);
const SECONDS = Number(process.env.CPU_SECONDS ?? 5);
const BURSTS = Number(process.env.CPU_BURSTS ?? 6);
const MODES = (process.env.CPU_MODES ?? 'passthrough,full').split(',') as GatehouseLib.Mode[];
const HERE = resolve(new URL('../../../..', import.meta.url).pathname);
const ROOTS = (process.env.CPU_ROOTS ?? HERE).split(',').map((r) => resolve(r));
const NAIVE = process.env.CPU_NAIVE !== '0';
const CONNECTIONS = 16;
/** USER_HZ: /proc counts CPU time in these ticks. */
const CLK_TCK = 100;

/** Microseconds of user + system CPU per thread id. */
function threadCpu(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
    } catch {
      continue; // the thread ended meanwhile
    }
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    out.set(Number(t), ((Number(f[11]) + Number(f[12])) * 1e6) / CLK_TCK);
  }
  return out;
}

interface Split {
  main: number;
  writer: number;
  other: number;
}

function split(pid: number, before: Map<number, number>, after: Map<number, number>): Split {
  const s: Split = { main: 0, writer: 0, other: 0 };
  for (const [tid, us] of after) {
    const d = us - (before.get(tid) ?? 0);
    if (tid === pid) s.main = d;
    else if (d > s.writer) {
      s.other += s.writer;
      s.writer = d;
    } else s.other += d;
  }
  return s;
}

interface Contender {
  label: string;
  pid: number;
  url: string;
  headers: string[];
  stop(): Promise<void>;
}

interface Burst {
  label: string;
  requests: number;
  rate: number;
  errors: number;
  /** µs of CPU per request. */
  total: number;
  main: number;
  writer: number;
  other: number;
  load1: number;
}

async function startNaive(upstream: string): Promise<Contender> {
  const port = await freePort();
  const proc = spawn(process.execPath, [new URL('../lib/naive-http-proxy.js', import.meta.url).pathname, upstream, String(port)], { stdio: 'ignore' });
  await waitTcp(port);
  return {
    label: 'naive',
    pid: proc.pid as number,
    url: `http://127.0.0.1:${port}${HTTP_BENCH_PATH}`,
    headers: [],
    async stop() {
      proc.kill('SIGTERM');
      await once(proc, 'exit');
    },
  };
}

/** Gatehouse from `root`: that checkout's own bench library starts that checkout's gateway. */
async function startGatehouseFrom(root: string, mode: GatehouseLib.Mode, upstream: string, label: string): Promise<Contender> {
  const lib = (await import(resolve(root, 'test/dist/bench/lib/gatehouse.js'))) as typeof GatehouseLib;
  const gw = await lib.startGatehouse({ connectors: gatehouseHttpYaml(upstream, mode), audit: lib.auditYaml(mode) });
  const { host, port } = gw.address('api');
  return { label, pid: gw.pid, url: `http://${host}:${port}${HTTP_BENCH_PATH}`, headers: [`Authorization: Bearer ${TOKENS.billing}`], stop: () => gw.stop() };
}

async function burst(c: Contender): Promise<Burst> {
  const before = threadCpu(c.pid);
  const r = await wrk(c.url, { connections: CONNECTIONS, seconds: SECONDS, rate: RATE, headers: c.headers });
  const s = split(c.pid, before, threadCpu(c.pid));
  const per = (us: number) => Math.round((us / r.units) * 10) / 10;
  return {
    label: c.label,
    requests: r.units,
    rate: Math.round(r.rate),
    errors: r.errors,
    total: per(s.main + s.writer + s.other),
    main: per(s.main),
    writer: per(s.writer),
    other: per(s.other),
    load1: Math.round(loadavg()[0] * 100) / 100,
  };
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function runMode(mode: GatehouseLib.Mode, upstream: string): Promise<{ mode: string; bursts: Burst[][] }> {
  const contenders: Contender[] = [];
  try {
    if (NAIVE) contenders.push(await startNaive(upstream));
    for (let i = 0; i < ROOTS.length; i++) contenders.push(await startGatehouseFrom(ROOTS[i], mode, upstream, ROOTS.length > 1 ? `${mode}@${i}` : mode));
    // JIT, pools and caches warm before anything is counted.
    for (const c of contenders) await wrk(c.url, { connections: CONNECTIONS, seconds: 3, headers: c.headers });
    const rounds: Burst[][] = [];
    for (let k = 0; k < BURSTS; k++) {
      const round: Burst[] = new Array<Burst>(contenders.length);
      // Rotate the order so that no contender always follows the same neighbour.
      for (let j = 0; j < contenders.length; j++) {
        const i = (j + k) % contenders.length;
        round[i] = await burst(contenders[i]);
        process.stderr.write(`${JSON.stringify(round[i])}\n`);
      }
      rounds.push(round);
    }
    return { mode, bursts: rounds };
  } finally {
    for (const c of contenders) await c.stop();
  }
}

async function main(): Promise<void> {
  const upstream = await startNginx(`location / { default_type application/json; return 200 '${HTTP_BENCH_BODY}'; }`);
  const load = [loadavg()[0]];
  const results: { mode: string; bursts: Burst[][] }[] = [];
  try {
    for (const mode of MODES) results.push(await runMode(mode, upstream.url));
  } finally {
    await upstream.stop();
  }
  load.push(loadavg()[0]);
  process.stdout.write(JSON.stringify({ rate: RATE, seconds: SECONDS, bursts: BURSTS, connections: CONNECTIONS, roots: ROOTS, results }) + '\n');
  process.stdout.write(`\nroots: ${ROOTS.map((r, i) => `@${i} = ${r}`).join(', ')}; load average (1 min) at start / end: ${load.map((l) => l.toFixed(2)).join(' / ')}\n`);
  process.stdout.write(
    '\n| mode | contender | req/s | CPU µs/request: total | main thread | busiest other (audit writer) | rest | total × naive (median of bursts) | main × naive |\n',
  );
  process.stdout.write('|---|---|---:|---:|---:|---:|---:|---:|---:|\n');
  for (const r of results) {
    const labels = r.bursts[0].map((b) => b.label);
    for (let i = 0; i < labels.length; i++) {
      const col = r.bursts.map((round) => round[i]);
      const f = (k: 'total' | 'main' | 'writer' | 'other') => mean(col.map((b) => b[k])).toFixed(1);
      const vsNaive = (k: 'total' | 'main') => (NAIVE && i > 0 ? median(r.bursts.map((round) => round[i][k] / round[0][k])).toFixed(2) : '—');
      process.stdout.write(
        `| ${r.mode} | ${labels[i]} | ${Math.round(mean(col.map((b) => b.rate)))} | ${f('total')} | ${f('main')} | ${f('writer')} | ${f('other')} | ${vsNaive('total')} | ${vsNaive('main')} |\n`,
      );
    }
    // Each later checkout against the first, burst by burst.
    const first = NAIVE ? 1 : 0;
    for (let i = first + 1; i < labels.length; i++) {
      const ratio = (k: 'total' | 'main') => r.bursts.map((round) => round[i][k] / round[first][k]);
      const show = (xs: number[]) => `median ${median(xs).toFixed(3)} (bursts ${xs.map((x) => x.toFixed(2)).join(', ')})`;
      process.stdout.write(`\n${labels[i]} ÷ ${labels[first]}: total ${show(ratio('total'))}; main thread ${show(ratio('main'))}\n`);
    }
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
