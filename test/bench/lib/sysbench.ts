/**
 * sysbench as the MySQL load generator (libmariadb, its own process): `oltp_point_select`
 * closed loop or at a fixed rate (`--rate`), latency percentiles from its histogram.
 */
import { loadgen, run } from './proc.js';
import type { LoadResult } from './pgbench.js';
import { histogramPercentiles } from './stats.js';

export interface MyEndpoint {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
}

export const SYSBENCH_TABLE = ['--tables=1', '--table-size=10000'];

function conn(t: MyEndpoint): string[] {
  return [`--mysql-host=${t.host}`, `--mysql-port=${t.port}`, `--mysql-user=${t.user}`, `--mysql-password=${t.password}`, `--mysql-db=${t.database}`];
}

/** Creates and fills sbtest1 (directly, before any target is measured). */
export async function sysbenchPrepare(t: MyEndpoint): Promise<void> {
  await run('sysbench', ['oltp_point_select', ...SYSBENCH_TABLE, ...conn(t), 'prepare'], { maxBuffer: 1 << 24, timeout: 300_000 });
}

export async function sysbench(t: MyEndpoint, o: { threads: number; seconds: number; rate?: number; test?: string; ps?: 'auto' | 'disable' }): Promise<LoadResult> {
  const args = [
    o.test ?? 'oltp_point_select',
    ...SYSBENCH_TABLE,
    ...conn(t),
    `--threads=${o.threads}`,
    `--time=${Math.max(1, Math.round(o.seconds))}`,
    `--db-ps-mode=${o.ps ?? 'auto'}`,
    ...(o.rate ? [`--rate=${o.rate}`] : []),
    '--histogram=on',
    'run',
  ];
  const [cmd, argv] = loadgen('sysbench', args);
  const { stdout } = await run(cmd, argv, { maxBuffer: 1 << 24, timeout: (o.seconds + 120) * 1000 });
  const units = Number(/queries:\s+(\d+)/.exec(stdout)?.[1] ?? 0);
  const rate = Number(/queries:\s+\d+\s+\(([\d.]+) per sec/.exec(stdout)?.[1] ?? 0);
  const seconds = Number(/total time:\s+([\d.]+)s/.exec(stdout)?.[1] ?? o.seconds);
  const errors = Number(/ignored errors:\s+(\d+)/.exec(stdout)?.[1] ?? 0);
  // Histogram lines: "       0.314 |****       1234" (value in ms, then the count).
  const buckets: [number, number][] = [];
  for (const m of stdout.matchAll(/^\s+([\d.]+)\s+\|\**\s+(\d+)\s*$/gm)) buckets.push([Number(m[1]), Number(m[2])]);
  return { units, seconds, rate, latency: histogramPercentiles(buckets), errors };
}
