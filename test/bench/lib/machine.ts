/** The facts a reader needs to weigh the figures: CPUs, kernel, versions, load, fsync latency. */
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { run } from './proc.js';
import { percentiles, round } from './stats.js';

export interface MachineFacts {
  date: string;
  nproc: number;
  cpuModel: string;
  memoryGiB: number;
  kernel: string;
  node: string;
  versions: Record<string, string>;
  /** 4 KiB write + fdatasync on the temp directory's file system (where the audit data_dir lives here), ms. */
  fsyncMs: { p50: number; p99: number; samples: number };
  loadAvgStart: number[];
  loadAvgEnd?: number[];
}

/** First line of a command's stdout or stderr (nginx -v and ssh -V print to stderr), or "—". */
async function version(cmd: string, args: string[], pick: RegExp): Promise<string> {
  try {
    const { stdout, stderr } = await run(cmd, args, { timeout: 10_000 });
    return pick.exec(`${stdout}\n${stderr}`)?.[1] ?? '—';
  } catch (e) {
    const x = e as { stdout?: string; stderr?: string };
    return pick.exec(`${x.stdout ?? ''}\n${x.stderr ?? ''}`)?.[1] ?? 'not installed';
  }
}

/** fdatasync of one 4 KiB block, repeated for `ms` (cheap; SQLite's WAL commit is the same call). */
export function fsyncLatency(ms: number): MachineFacts['fsyncMs'] {
  const dir = mkdtempSync(join(tmpdir(), 'gh-fsync-'));
  const fd = openSync(join(dir, 'probe'), 'w');
  const block = Buffer.alloc(4096, 7);
  const samples: number[] = [];
  try {
    const end = performance.now() + ms;
    for (let i = 0; performance.now() < end; i++) {
      writeSync(fd, block, 0, block.length, (i % 256) * 4096);
      const t = performance.now();
      fdatasyncSync(fd);
      samples.push(performance.now() - t);
    }
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
  const p = percentiles(samples);
  return { p50: round(p.p50), p99: round(p.p99), samples: samples.length };
}

export async function machineFacts(fsyncProbeMs: number): Promise<MachineFacts> {
  const [postgresql, mariadb, nginx, pgbouncer, openssh, pgbenchV, wrkV, sysbenchV] = await Promise.all([
    version('psql', ['-h', '127.0.0.1', '-U', 'postgres', '-XAtc', 'SHOW server_version'], /^(\S.*)$/m),
    version('mariadb', ['-h', '127.0.0.1', '-u', 'root', '-N', '-e', 'SELECT VERSION()'], /^(\S.*)$/m),
    version('nginx', ['-v'], /nginx\/(\S+)/),
    version('pgbouncer', ['--version'], /PgBouncer (\S+)/i),
    version('ssh', ['-V'], /(OpenSSH_\S+)/),
    version('pgbench', ['--version'], /pgbench \(PostgreSQL\) (\S+)/),
    version('wrk', ['-v'], /wrk (\S+)/),
    version('sysbench', ['--version'], /sysbench (\S+)/),
  ]);
  return {
    date: new Date().toISOString(),
    nproc: availableParallelism(),
    cpuModel: cpus()[0]?.model ?? '—',
    memoryGiB: round(totalmem() / 2 ** 30, 1),
    kernel: release(),
    node: process.version,
    versions: { postgresql, mariadb, nginx, pgbouncer, openssh, pgbench: pgbenchV, wrk: wrkV, sysbench: sysbenchV },
    fsyncMs: fsyncLatency(fsyncProbeMs),
    loadAvgStart: loadavg().map((x) => round(x, 2)),
  };
}
