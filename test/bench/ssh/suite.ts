/**
 * SSH (#11): a real sshd (test/e2e/ssh/env.ts) and the SSH connector in front of it
 * (test/e2e/ssh/harness.ts: strict audit, command rules, recordings), driven by the real
 * OpenSSH clients. scp of one file each way (its default SFTP protocol, and the legacy `-O`
 * protocol: an exec of `scp -t`/`scp -f`), direct vs through the gateway, and sequential
 * `ssh host true` (connect, authenticate, exec, exit) direct vs through the gateway.
 *
 * The gateway runs in this process (the harness starts it so): its CPU is process.cpuUsage()
 * over each transfer, the driver doing nothing else meanwhile.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { clientOptions, runClient, sshAvailable, startSshd, type Sshd } from '../../e2e/ssh/env.js';
import { startSshGateway, type SshGateway } from '../../e2e/ssh/harness.js';
import type { BenchConfig } from '../lib/config.js';
import { percentiles, ratio, round, type Latency } from '../lib/stats.js';

export interface ScpRow {
  protocol: 'sftp' | 'scp-legacy';
  direction: 'upload' | 'download';
  directMBps: number;
  gatewayMBps: number;
  ratio: number | null;
  /** Gateway CPU ms per MB moved (user + system of this process). */
  gatewayCpuMsPerMB: number;
}

export interface SshResult {
  megabytes: number;
  scp: ScpRow[];
  connects: number;
  directConnectMs: { mean: number } & Latency;
  gatewayConnectMs: { mean: number } & Latency;
  connectRatio: number | null;
  skipped?: string;
}

async function sha256(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(path)) h.update(c as Buffer);
  return h.digest('hex');
}

async function writeRandom(path: string, megabytes: number): Promise<void> {
  const out = createWriteStream(path);
  for (let i = 0; i < megabytes; i++) if (!out.write(randomBytes(1 << 20))) await once(out, 'drain');
  out.end();
  await once(out, 'finish');
}

/** `-p PORT` of ssh is `-P PORT` for scp. */
const forScp = (opts: string[]) => opts.map((a) => (a === '-p' ? '-P' : a));

export async function sshSuite(cfg: BenchConfig, log: (s: string) => void): Promise<SshResult> {
  const missing = sshAvailable();
  const empty = { mean: NaN, p50: NaN, p99: NaN, p999: NaN };
  if (missing) return { megabytes: cfg.ssh.megabytes, scp: [], connects: 0, directConnectMs: empty, gatewayConnectMs: empty, connectRatio: null, skipped: missing };
  const dir = mkdtempSync(join(tmpdir(), 'gh-bench-ssh-'));
  let sshd: Sshd | null = null;
  let g: SshGateway | null = null;
  try {
    sshd = await startSshd();
    g = await startSshGateway(sshd);
    const knownHosts = join(dir, 'target_known_hosts');
    writeFileSync(knownHosts, sshd.knownHosts);
    const directOpts = [...clientOptions({ port: sshd.port, knownHosts, identity: sshd.gatewayKey.path }), '-p', String(sshd.port)];
    const directHost = `${sshd.user}@127.0.0.1`;
    const gwOpts = g.opts();
    const gwHost = 'deploy@127.0.0.1';
    const local = join(dir, 'payload.bin');
    await writeRandom(local, cfg.ssh.megabytes);
    const want = await sha256(local);
    const bytes = statSync(local).size;

    const transfer = async (opts: string[], from: string, to: string, legacy: boolean) => {
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      const r = await runClient('scp', [...(legacy ? ['-O'] : []), ...forScp(opts), from, to], { timeoutMs: 600_000 });
      const seconds = (performance.now() - t0) / 1000;
      const cpu = process.cpuUsage(cpu0);
      if (r.code !== 0) throw new Error(`scp ${from} ${to} failed: ${r.stderr}`);
      return { mbps: bytes / 1e6 / seconds, cpuMs: (cpu.user + cpu.system) / 1000 };
    };
    const check = async (path: string) => {
      if ((await sha256(path)) !== want) throw new Error(`${path}: the copy differs from the original`);
      rmSync(path);
    };
    const scp: ScpRow[] = [];
    for (const legacy of [false, true]) {
      const protocol = legacy ? 'scp-legacy' : 'sftp';
      log(`ssh: ${cfg.ssh.megabytes} MB scp (${protocol})`);
      const remote = join(sshd.work, `bench-${protocol}.bin`);
      const back = join(dir, 'back.bin');
      const du = await transfer(directOpts, local, `${directHost}:${remote}`, legacy);
      await check(remote);
      const gu = await transfer(gwOpts, local, `${gwHost}:${remote}`, legacy);
      const dd = await transfer(directOpts, `${directHost}:${remote}`, back, legacy);
      await check(back);
      const gd = await transfer(gwOpts, `${gwHost}:${remote}`, back, legacy);
      await check(back);
      rmSync(remote, { force: true });
      const mb = bytes / 1e6;
      scp.push({
        protocol,
        direction: 'upload',
        directMBps: round(du.mbps, 1),
        gatewayMBps: round(gu.mbps, 1),
        ratio: ratio(gu.mbps, du.mbps),
        gatewayCpuMsPerMB: round(gu.cpuMs / mb, 2),
      });
      scp.push({
        protocol,
        direction: 'download',
        directMBps: round(dd.mbps, 1),
        gatewayMBps: round(gd.mbps, 1),
        ratio: ratio(gd.mbps, dd.mbps),
        gatewayCpuMsPerMB: round(gd.cpuMs / mb, 2),
      });
    }

    const connects = async (opts: string[], host: string) => {
      const ms: number[] = [];
      for (let i = 0; i < cfg.ssh.connects; i++) {
        const t0 = performance.now();
        const r = await runClient('ssh', [...opts, host, 'true'], { timeoutMs: 30_000 });
        ms.push(performance.now() - t0);
        if (r.code !== 0) throw new Error(`ssh ${host} true failed (${r.code}): ${r.stderr}`);
      }
      const p = percentiles(ms);
      return { mean: round(ms.reduce((a, b) => a + b, 0) / ms.length, 2), p50: round(p.p50, 2), p99: round(p.p99, 2), p999: round(p.p999, 2) };
    };
    log(`ssh: ${cfg.ssh.connects} sequential ssh true, direct then through the gateway`);
    const directConnectMs = await connects(directOpts, directHost);
    const gatewayConnectMs = await connects(gwOpts, gwHost);
    const res: SshResult = {
      megabytes: cfg.ssh.megabytes,
      scp,
      connects: cfg.ssh.connects,
      directConnectMs,
      gatewayConnectMs,
      connectRatio: ratio(gatewayConnectMs.mean, directConnectMs.mean),
    };
    log(`  ${JSON.stringify(res)}`);
    return res;
  } finally {
    await g?.stop();
    await sshd?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
