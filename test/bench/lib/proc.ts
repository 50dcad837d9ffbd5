/**
 * Process plumbing shared by the benchmarks: CPU and memory of a process tree from /proc,
 * running a client with a bounded time (ports: test/lib/net.ts).
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { promisify } from 'node:util';

export const run = promisify(execFile);
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Linux USER_HZ: /proc/PID/stat counts CPU time in these ticks. */
const CLK_TCK = 100;

export interface Cpu {
  /** Microseconds of user and system CPU. */
  user: number;
  system: number;
}

/** The pid and every live descendant (workers, nginx's worker, runuser's pgbouncer). */
export function processTree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    const tasks = `/proc/${out[i]}/task`;
    if (!existsSync(tasks)) continue;
    for (const tid of safeList(tasks)) {
      const children = safeRead(`${tasks}/${tid}/children`);
      for (const c of children.split(' ').filter(Boolean)) out.push(Number(c));
    }
  }
  return out;
}

/**
 * utime + stime of a process tree, all threads: /proc/PID/stat of a process already sums
 * its threads. Children that exit in the measured window would move into cutime and be
 * missed; the proxies measured here keep theirs for the whole run.
 */
export function cpuOfTree(pid: number): Cpu {
  let user = 0;
  let system = 0;
  for (const p of processTree(pid)) {
    const c = statCpu(`/proc/${p}/stat`);
    user += c.user;
    system += c.system;
  }
  return { user, system };
}

/**
 * utime + stime of the main threads of a process tree: what is left of cpuOfTree is the other
 * threads' (for Gatehouse: the audit writer with its fsyncs, the thread pool, V8's helpers).
 */
export function mainThreadsOfTree(pid: number): Cpu {
  let user = 0;
  let system = 0;
  for (const p of processTree(pid)) {
    const c = cpuOfThread(p, p);
    user += c.user;
    system += c.system;
  }
  return { user, system };
}

/** utime + stime of one thread of a process (the main thread's tid is the pid). */
export function cpuOfThread(pid: number, tid: number): Cpu {
  return statCpu(`/proc/${pid}/task/${tid}/stat`);
}

function statCpu(path: string): Cpu {
  const stat = safeRead(path);
  if (!stat) return { user: 0, system: 0 };
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: (Number(f[11]) * 1e6) / CLK_TCK, system: (Number(f[12]) * 1e6) / CLK_TCK };
}

export function cpuDelta(a: Cpu, b: Cpu): Cpu {
  return { user: b.user - a.user, system: b.system - a.system };
}

/** A field of /proc/PID/status in KiB (VmHWM: peak resident set; VmRSS: now). */
export function statusKiB(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(safeRead(`/proc/${pid}/status`));
  return m ? Number(m[1]) : NaN;
}

function safeRead(p: string): string {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return '';
  }
}
function safeList(p: string): string[] {
  try {
    return readdirSync(p);
  } catch {
    return [];
  }
}

export function have(bin: string): boolean {
  return ['/usr/bin', '/usr/sbin', '/bin', '/sbin', '/usr/local/bin'].some((d) => existsSync(`${d}/${bin}`));
}

/**
 * The load generator's argv, pinned to CPUs with taskset when BENCH_PIN_LOADGEN names them
 * (e.g. "1"): on a 2-core machine pinning starves whatever shares that core, so it is a knob.
 */
export function loadgen(cmd: string, args: string[]): [string, string[]] {
  const cpus = process.env.BENCH_PIN_LOADGEN;
  return cpus ? ['taskset', ['-c', cpus, cmd, ...args]] : [cmd, args];
}
