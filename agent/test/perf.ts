/**
 * Agent figures (not a test): shipping throughput per sink, CPU of the agent process per
 * 1,000 events (utime+stime from /proc/PID/stat), and the shipping lag under a steady
 * gateway load. Run from the repository root after `npx tsc -b agent gateway`:
 *
 *   node agent/dist/test/perf.js [events=50000] [rate=5000] [seconds=10]
 *
 * Needs the local PostgreSQL (127.0.0.1:5432, user postgres) and /usr/sbin/nats-server.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { append, centralSeqs, cli, Nats, openLog, pgDatabase, query, tempDir, waitFor, writeConfig, freePort } from './helpers.js';

const N = Number(process.argv[2] ?? 50_000);
const RATE = Number(process.argv[3] ?? 5000);
const SECONDS = Number(process.argv[4] ?? 10);
const teardowns: Array<() => unknown> = [];
const t = { teardown: (f: () => unknown) => teardowns.push(f) };

const TICK = 100; // USER_HZ: clock ticks per second of /proc/PID/stat on Linux

function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICK;
}

async function metric(addr: string, name: string, sink: string): Promise<number> {
  try {
    const text = await (await fetch(`http://${addr}/metrics`)).text();
    const m = new RegExp(`^${name}\\{[^}]*sink="${sink}"\\} (\\d+)`, 'm').exec(text);
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

async function throughput(dataDir: string, dir: string, name: string, sink: Record<string, unknown>): Promise<void> {
  const port = await freePort();
  const cfg = writeConfig(
    dir,
    {
      data_dir: dataDir,
      gateway_id: `perf-${name}`,
      agent: { poll_interval: '50ms', metrics_listen: `127.0.0.1:${port}`, state_dir: join(dir, `state-${name}`), sinks: [{ name, ...sink }] },
    },
    `${name}.yaml`,
  );
  const start = Date.now();
  const a = cli(['agent', '-c', cfg]);
  const addr = `127.0.0.1:${port}`;
  await waitFor(async () => (await metric(addr, 'gatehouse_agent_shipped_seq', name)) >= N, 300_000);
  const ms = Date.now() - start;
  const cpu = cpuMs(a.proc.pid!);
  a.proc.kill('SIGTERM');
  await a.exited;
  console.log(
    `${name.padEnd(9)} ${String(Math.round((N * 1000) / ms)).padStart(7)} events/s   CPU ${((cpu / N) * 1000).toFixed(1)} ms per 1,000 events   (${N} events in ${(ms / 1000).toFixed(1)} s incl. start and verification)`,
  );
}

async function main(): Promise<void> {
  const dir = tempDir(t, 'gh-agent-perf-');
  const dataDir = join(dir, 'var');
  const url = await pgDatabase(t);
  const nats = await Nats.start(t);
  const log = await openLog(t, dataDir);
  await append(log, N);
  const received = { n: 0 };
  const server = createServer((req, res) => {
    req.on('data', (d: Buffer) => (received.n += d.length));
    req.on('end', () => res.writeHead(204).end());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  teardowns.push(() => server.close());
  console.log(`agent shipping throughput, ${N} events already in the log, one sink per run (batch_size 1000):`);
  await throughput(dataDir, dir, 'postgres', { type: 'postgres', url });
  await throughput(dataDir, dir, 'nats', { type: 'nats', url: nats.url, subject: 'perf', stream: 'PERF' });
  await throughput(dataDir, dir, 'http', { type: 'http', url: `http://127.0.0.1:${(server.address() as { port: number }).port}/`, secret: 'perf-secret-0123456789' });
  await throughput(dataDir, dir, 'file', { type: 'file', path: join(dir, 'out.jsonl') });

  // Lag: a steady RATE events/s written by this process while one agent ships to postgres + nats + file.
  const cfg = writeConfig(dir, {
    data_dir: dataDir,
    gateway_id: 'perf-lag',
    agent: {
      poll_interval: '50ms',
      state_dir: join(dir, 'state-lag'),
      sinks: [
        { type: 'postgres', url },
        { type: 'nats', url: nats.url, subject: 'perflag', stream: 'PERFLAG' },
        { type: 'file', path: join(dir, 'lag.jsonl') },
      ],
    },
  });
  const a = cli(['agent', '-c', cfg]);
  await waitFor(async () => (await centralSeqs(url, 'perf-lag')).count >= N, 300_000);
  const cpu0 = cpuMs(a.proc.pid!);
  const from = N;
  const total = RATE * SECONDS;
  const t0 = Date.now();
  for (let i = 0; i < total; i += RATE / 100) {
    const due = t0 + (i / RATE) * 1000;
    if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
    await append(log, RATE / 100, from + i);
  }
  await waitFor(async () => (await centralSeqs(url, 'perf-lag')).count >= N + total, 120_000);
  const cpu = cpuMs(a.proc.pid!) - cpu0;
  a.proc.kill('SIGTERM');
  await a.exited;
  const lags = (
    await query<{ ms: number }>(
      url,
      "SELECT extract(epoch FROM (shipped_at - (body::jsonb->>'time')::timestamptz)) * 1000 AS ms FROM gatehouse.events WHERE gateway_id = 'perf-lag' AND seq > $1 ORDER BY 1",
      [from],
    )
  ).map((r) => Number(r.ms));
  const pct = (p: number) => lags[Math.min(lags.length - 1, Math.floor((p / 100) * lags.length))].toFixed(0);
  console.log(
    `lag at ${RATE} events/s for ${SECONDS} s (postgres + nats + file, event time → committed centrally): p50 ${pct(50)} ms, p99 ${pct(99)} ms, max ${pct(100)} ms; agent CPU ${((cpu / total) * 1000).toFixed(1)} ms per 1,000 events (${((cpu / (SECONDS * 1000)) * 100).toFixed(0)} % of one core)`,
  );
}

main()
  .catch((e) => {
    console.error(e);
    process.exitCode = 1;
  })
  .finally(async () => {
    for (const f of teardowns.reverse()) await f();
  });
