/**
 * What one benchmark run does, from the environment (no flags: `make bench` passes none).
 *
 *   BENCH_SECONDS      seconds of each measured run (default 10; smoke 1)
 *   BENCH_SMOKE=1      tiny sizes and durations: proves every part works, measures nothing
 *   BENCH_ONLY         comma list of parts: postgres,http,mysql,group-commit,large,ssh
 *   BENCH_PG_RATE, BENCH_HTTP_RATE, BENCH_MYSQL_RATE   fixed offered rates (units/s; defaults 1000,
 *                      800, 1000: below the saturation of the slowest target, strict \`full\`, on 2 cores)
 *   BENCH_GC_CLIENTS   client counts of the strict group-commit runs (default 8,32,128)
 *   BENCH_LARGE_ROWS   rows of the large-result SELECT (default 1,000,000)
 *   BENCH_SSH_MB, BENCH_SSH_CONNECTS   scp size and sequential `ssh true` count (200, 200)
 *   BENCH_DOC_DIR      where benchmarks.md and the SVG go (default docs/; the smoke test uses a temp dir)
 *   BENCH_PIN_LOADGEN  CPU list for taskset on the load generators (default: not pinned)
 *   BENCH_NICE         nice value of the driver and all it starts (e.g. -10; default 0)
 */
import { resolve } from 'node:path';

export const PARTS = ['postgres', 'http', 'mysql', 'group-commit', 'large', 'ssh'] as const;
export type Part = (typeof PARTS)[number];

export interface BenchConfig {
  smoke: boolean;
  seconds: number;
  /** 0: no warm-up (the smoke). */
  warmSeconds: number;
  parts: Part[];
  pg: { rate: number; clients: number; scale: number };
  http: { rate: number; connections: number };
  mysql: { rate: number; threads: number };
  groupCommitClients: number[];
  largeRows: number;
  ssh: { megabytes: number; connects: number };
  docDir: string;
  nice: number;
}

const REPO = resolve(new URL('../../../..', import.meta.url).pathname);

function num(name: string, dflt: number): number {
  const v = Number(process.env[name]);
  return process.env[name] && Number.isFinite(v) && v > 0 ? v : dflt;
}

export function benchConfig(env = process.env): BenchConfig {
  const smoke = env.BENCH_SMOKE === '1';
  const only = (env.BENCH_ONLY ?? '').split(',').filter(Boolean);
  const unknown = only.filter((p) => !(PARTS as readonly string[]).includes(p));
  if (unknown.length) throw new Error(`BENCH_ONLY: unknown part(s) ${unknown.join(', ')}; parts: ${PARTS.join(', ')}`);
  return {
    smoke,
    seconds: num('BENCH_SECONDS', smoke ? 1 : 10),
    warmSeconds: smoke ? 0 : 3,
    parts: only.length ? (only as Part[]) : [...PARTS],
    pg: { rate: num('BENCH_PG_RATE', smoke ? 200 : 1000), clients: 8, scale: smoke ? 1 : 10 },
    http: { rate: num('BENCH_HTTP_RATE', smoke ? 200 : 800), connections: 16 },
    mysql: { rate: num('BENCH_MYSQL_RATE', smoke ? 200 : 1000), threads: 8 },
    groupCommitClients: (env.BENCH_GC_CLIENTS ?? '8,32,128')
      .split(',')
      .map(Number)
      .filter((n) => n > 0),
    largeRows: num('BENCH_LARGE_ROWS', smoke ? 20_000 : 1_000_000),
    ssh: { megabytes: num('BENCH_SSH_MB', smoke ? 4 : 200), connects: num('BENCH_SSH_CONNECTS', smoke ? 5 : 200) },
    docDir: resolve(env.BENCH_DOC_DIR ?? resolve(REPO, 'docs')),
    nice: Math.max(-20, Math.min(19, Math.trunc(Number(env.BENCH_NICE ?? 0)) || 0)),
  };
}
