/**
 * Gatehouse in its own process (`node gateway/bin/gatehouse.js start -c cfg`), as an operator
 * runs it: its CPU and memory are then its own, read from /proc, apart from the load
 * generator's and the benchmark driver's. Listeners bind port 0; the addresses come from the
 * lines `gatehouse start` prints.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { TOKENS } from '../../lib/gateway.js';
import { processTree } from './proc.js';

const REPO = resolve(new URL('../../../..', import.meta.url).pathname);
export const GATEHOUSE_BIN = join(REPO, 'gateway/bin/gatehouse.js');

/** `passthrough`: no rules, no masking, batched audit. `full`: rules, masking, strict audit. */
export type Mode = 'passthrough' | 'full';

export function auditYaml(mode: Mode): string {
  return mode === 'full' ? '{ durability: strict }' : '{ durability: batched, window_ms: 5 }';
}

export interface GatehouseProcess {
  /** The node process (not a wrapper such as strace). */
  pid: number;
  dataDir: string;
  adminUrl: string;
  address(connector: string): { host: string; port: number };
  stop(): Promise<void>;
}

export interface GatehouseOptions {
  /** Items of `connectors:` (YAML, indented as list items). */
  connectors: string;
  audit: string;
  env?: Record<string, string>;
  /** A command the gateway runs under (e.g. strace and its options). */
  wrap?: string[];
}

export async function startGatehouse(o: GatehouseOptions): Promise<GatehouseProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'gh-bench-gw-'));
  const dataDir = join(dir, 'data');
  const cfg = join(dir, 'gatehouse.yaml');
  writeFileSync(
    cfg,
    `data_dir: ${dataDir}\nadmin: { listen: 127.0.0.1:0 }\nlog: { level: warn }\naudit: ${o.audit}\n` +
      `identity:\n  static_tokens:\n    - { token: "${TOKENS.billing}", subject: "svc:billing", groups: [payments] }\n` +
      `connectors:\n${o.connectors}\n`,
  );
  const argv = [...(o.wrap ?? []), process.execPath, GATEHOUSE_BIN, 'start', '-c', cfg];
  const proc = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...o.env } });
  const addresses = new Map<string, string>();
  let adminUrl = '';
  let output = '';
  await new Promise<void>((resolveStart, reject) => {
    const onData = (c: Buffer) => {
      output += c.toString();
      for (const m of output.matchAll(/^gatehouse: connector (\S+) on (\S+)$/gm)) addresses.set(m[1], m[2]);
      adminUrl = /^gatehouse: admin on (\S+)$/m.exec(output)?.[1] ?? adminUrl;
      if (/^gatehouse: audit checkpoint key/m.test(output)) resolveStart();
    };
    proc.stdout?.on('data', onData);
    proc.stderr?.on('data', (c: Buffer) => (output += c.toString()));
    proc.once('exit', (code) => reject(new Error(`gatehouse exited (${code}) before it listened: ${output}`)));
    setTimeout(() => reject(new Error(`gatehouse did not start in 30 s: ${output}`)), 30_000).unref();
  });
  const pid = o.wrap ? nodeChild(proc) : (proc.pid as number);
  return {
    pid,
    dataDir,
    adminUrl,
    address(name) {
      const a = addresses.get(name);
      if (!a) throw new Error(`no connector ${name} in: ${output}`);
      const i = a.lastIndexOf(':');
      return { host: a.slice(0, i), port: Number(a.slice(i + 1)) };
    },
    async stop() {
      if (proc.exitCode === null) {
        const gone = once(proc, 'exit');
        // The gateway itself, not a wrapper: strace then sees its tracee exit and writes its log.
        process.kill(pid, 'SIGTERM');
        const t = setTimeout(() => proc.kill('SIGKILL'), 15_000);
        await gone;
        clearTimeout(t);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Under a wrapper the gateway is the wrapper's first descendant. */
function nodeChild(proc: ChildProcess): number {
  const tree = processTree(proc.pid as number);
  return tree[1] ?? (proc.pid as number);
}
