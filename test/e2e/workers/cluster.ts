/**
 * A gateway with connection workers, as an operator runs it: `gatehouse start -c FILE` in
 * its own process (node:cluster forks from there), the addresses, the admin URL and the
 * worker pids read from the lines it prints.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../../../gateway/bin/gatehouse.js', import.meta.url));

export interface ClusterGateway {
  proc: ChildProcess;
  dir: string;
  config: string;
  dataDir: string;
  adminUrl: string;
  address(connector: string): { host: string; port: number };
  /** Worker index → pid, as printed at start. */
  workers: Map<number, number>;
  /** Everything the process wrote so far (stdout and stderr). */
  output(): string;
  /** SIGTERM and wait for the exit; resolves with the exit code. */
  stop(): Promise<number | null>;
  /** Remove the directory (after stop). */
  remove(): void;
}

/** `yaml`: the file without data_dir and admin. `shell`: run under `bash -c` with this prefix (e.g. `ulimit -f 3072 &&`). */
export async function startCluster(yaml: string, opts: { env?: Record<string, string>; shell?: string } = {}): Promise<ClusterGateway> {
  const dir = mkdtempSync(join(tmpdir(), 'gh-workers-'));
  const config = join(dir, 'gatehouse.yaml');
  const dataDir = join(dir, 'data');
  writeFileSync(config, `data_dir: ./data\nadmin: { listen: 127.0.0.1:0 }\n${yaml}`);
  const env = { ...process.env, ...opts.env };
  const proc = opts.shell
    ? spawn('bash', ['-c', `${opts.shell} exec "${process.execPath}" "${BIN}" start -c "${config}"`], { stdio: ['ignore', 'pipe', 'pipe'], env })
    : spawn(process.execPath, [BIN, 'start', '-c', config], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const started = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 60_000);
    const check = () => {
      if (/^gatehouse: audit checkpoint key/m.test(out)) {
        clearTimeout(timer);
        resolve(true);
      }
    };
    proc.stdout?.on('data', check);
    proc.once('exit', () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
  if (!started) {
    if (proc.exitCode === null) proc.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`gatehouse did not start: ${out}`);
  }
  const workers = new Map([...out.matchAll(/^gatehouse: worker (\d+) pid (\d+)$/gm)].map((m) => [Number(m[1]), Number(m[2])]));
  return {
    proc,
    dir,
    config,
    dataDir,
    adminUrl: /^gatehouse: admin on (\S+)$/m.exec(out)![1],
    workers,
    address(name) {
      const a = new RegExp(`^gatehouse: connector ${name} on (\\S+):(\\d+)$`, 'm').exec(out);
      if (!a) throw new Error(`no connector ${name} in: ${out}`);
      return { host: a[1], port: Number(a[2]) };
    },
    output: () => out,
    async stop() {
      if (proc.exitCode !== null) return proc.exitCode;
      const gone = once(proc, 'exit');
      proc.kill('SIGTERM');
      const killer = setTimeout(() => proc.kill('SIGKILL'), 30_000);
      const [code] = (await gone) as [number | null];
      clearTimeout(killer);
      return code;
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** True while a process with this pid exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The value of one Prometheus series in a scrape (NaN when absent). */
export function series(text: string, name: string, labels = ''): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `) || (labels === '' && l.startsWith(`${name} `)));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : NaN;
}
