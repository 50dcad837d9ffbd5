/**
 * pgbench as the PostgreSQL load generator: closed loop (as fast as it goes) or at a fixed
 * offered rate (`-R`), latency of every transaction from its per-transaction log (`-l`).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadgen, run } from './proc.js';
import { percentiles, type Latency } from './stats.js';

export interface PgEndpoint {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
}

export interface PgbenchOptions {
  clients: number;
  seconds: number;
  /** Offered transactions per second (`-R`); absent: closed loop. */
  rate?: number;
  /** Query protocol (`-M`). */
  mode?: 'simple' | 'extended' | 'prepared';
  /** The script: `['-S']` (built-in select-only) or `['-f', file]`. */
  script?: string[];
}

export interface LoadResult {
  /** Units served (transactions here: one statement each for `-S`). */
  units: number;
  seconds: number;
  /** Units per second as the load generator reports them. */
  rate: number;
  /** Service time: from sending to the reply (pgbench's schedule lag under -R is left out). */
  latency: Latency;
  errors: number;
}

export async function pgbench(t: PgEndpoint, o: PgbenchOptions): Promise<LoadResult> {
  const dir = mkdtempSync(join(tmpdir(), 'gh-pgbench-log-'));
  try {
    const args = [
      '-n',
      ...(o.script ?? ['-S']),
      '-M',
      o.mode ?? 'prepared',
      '-c',
      String(o.clients),
      '-j',
      String(Math.min(o.clients, o.clients >= 64 ? 4 : 2)),
      '-T',
      String(Math.max(1, Math.round(o.seconds))),
      ...(o.rate ? ['-R', String(o.rate)] : []),
      '-l',
      `--log-prefix=${join(dir, 'tx')}`,
      '-h',
      t.host,
      '-p',
      String(t.port),
      '-U',
      t.user,
      t.database,
    ];
    const [cmd, argv] = loadgen('pgbench', args);
    const { stdout } = await run(cmd, argv, {
      env: { ...process.env, PGPASSWORD: t.password, PGSSLMODE: 'disable' },
      maxBuffer: 16 << 20,
      timeout: (o.seconds + 60) * 1000,
      cwd: dir,
    });
    const units = Number(/number of transactions actually processed: (\d+)/.exec(stdout)?.[1] ?? 0);
    const failed = Number(/number of failed transactions: (\d+)/.exec(stdout)?.[1] ?? 0);
    const rate = Number(/tps = ([\d.]+)/.exec(stdout)?.[1] ?? NaN);
    // Log line: client_id transaction_no time script_no time_epoch time_us [schedule_lag]; time in µs.
    const samples: number[] = [];
    for (const f of readdirSync(dir).filter((n) => n.startsWith('tx.'))) {
      for (const line of readFileSync(join(dir, f), 'utf8').split('\n')) {
        if (!line) continue;
        const p = line.split(' ');
        const us = Number(p[2]) - (p.length > 6 ? Number(p[6]) : 0);
        if (Number.isFinite(us)) samples.push(us);
      }
    }
    return { units, seconds: o.seconds, rate, latency: percentiles(samples, 1 / 1000), errors: failed };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
