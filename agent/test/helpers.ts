/** Real parts for the agent's tests: audit logs, throwaway PostgreSQL databases, a private nats-server, the CLI. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { openAuditLog, type AuditLog } from '@gatehouse/audit';
import type { AuditEventInput } from '@gatehouse/core';

interface T {
  teardown(fn: () => unknown): void;
}

export const REPO = resolve(import.meta.dirname, '../../..');
export const PG_ADMIN = 'postgres://postgres@127.0.0.1:5432/postgres';

export function tempDir(t: T, prefix = 'gh-agent-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export function event(i: number): AuditEventInput {
  return {
    time: new Date().toISOString(),
    kind: 'unit',
    connector: 'payments-db',
    protocol: 'postgres',
    session: `sess-${i % 7}`,
    identity: { subject: `svc:${i % 3}`, issuer: 'https://idp.example.com/', groups: ['payments'] },
    unit: { type: 'statement', text: `SELECT * FROM accounts WHERE id = $1 -- ${i}`, params: ['***'] },
    decision: { action: 'allow' },
    result: { status: 'SELECT 1', rows: 1, durationMs: 0.25 },
  };
}

export async function openLog(t: T, dataDir: string, checkpointIntervalSec = 3600): Promise<AuditLog> {
  const log = await openAuditLog({ dataDir, durability: 'batched', windowMs: 5, checkpointIntervalSec, origin: 'gatehouse' });
  t.teardown(() => log.close());
  return log;
}

/** Appends n events in chunks (bounded pending), starting at `from`. */
export async function append(log: AuditLog, n: number, from = 0, chunk = 2000): Promise<void> {
  for (let i = 0; i < n; i += chunk) {
    await Promise.all(Array.from({ length: Math.min(chunk, n - i) }, (_, j) => log.append(event(from + i + j))));
  }
}

/** A fresh database, dropped at teardown. */
export async function pgDatabase(t: T): Promise<string> {
  const name = `gh_agent_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  t.teardown(async () => {
    const a = new pg.Client({ connectionString: PG_ADMIN });
    await a.connect();
    await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await a.end();
  });
  return `postgres://postgres@127.0.0.1:5432/${name}`;
}

export async function query<R extends pg.QueryResultRow>(url: string, sql: string, params: unknown[] = []): Promise<R[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<R>(sql, params)).rows;
  } finally {
    await c.end();
  }
}

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => res(p));
    });
  });
}

/** Our own nats-server with JetStream (never the system one on 4222): stop and start it at will, same store. */
export class Nats {
  private proc: ChildProcess | null = null;
  readonly url: string;
  private constructor(
    readonly port: number,
    readonly storeDir: string,
  ) {
    this.url = `nats://127.0.0.1:${port}`;
  }

  static async start(t: T): Promise<Nats> {
    const n = new Nats(await freePort(), tempDir(t, 'gh-nats-'));
    t.teardown(() => n.stop());
    await n.start();
    return n;
  }

  async start(): Promise<void> {
    const p = spawn('/usr/sbin/nats-server', ['-js', '-a', '127.0.0.1', '-p', String(this.port), '-sd', this.storeDir], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.proc = p;
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
    const ok = await waitFor(() => err.includes('Server is ready'), 15_000);
    if (!ok) throw new Error(`nats-server did not start: ${err}`);
  }

  async stop(): Promise<void> {
    const p = this.proc;
    this.proc = null;
    if (!p || p.exitCode !== null) return;
    p.kill('SIGTERM');
    await new Promise((r) => p.once('exit', r));
  }
}

/** Polls `cond` every 50 ms, at most `ms`: a bounded wait, never a timing assertion. */
export async function waitFor(cond: () => boolean | Promise<boolean>, ms = 30_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return cond();
}

/** Config files are YAML; JSON is YAML. */
export function writeConfig(dir: string, cfg: Record<string, unknown>, name = 'gatehouse.yaml'): string {
  const p = join(dir, name);
  writeFileSync(p, JSON.stringify(cfg, null, 2));
  return p;
}

export interface Cli {
  proc: ChildProcess;
  stderr(): string;
  exited: Promise<number | null>;
}

export function cli(args: string[], env: NodeJS.ProcessEnv = {}): Cli {
  const proc = spawn(process.execPath, [join(REPO, 'gateway/bin/gatehouse.js'), ...args], { cwd: REPO, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  let out = '';
  proc.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-200_000)));
  proc.stdout.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-200_000)));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  return { proc, stderr: () => err + out, exited };
}

export async function run(args: string[]): Promise<{ code: number | null; output: string }> {
  const c = cli(args);
  const code = await c.exited;
  return { code, output: c.stderr() };
}

export async function centralSeqs(url: string, gw: string): Promise<{ count: number; distinct: number; min: number; max: number }> {
  const [exists] = await query<{ t: string | null }>(url, "SELECT to_regclass('gatehouse.events')::text AS t");
  if (!exists.t) return { count: 0, distinct: 0, min: 0, max: 0 };
  const [r] = await query<{ count: string; nd: string; min: string | null; max: string | null }>(
    url,
    'SELECT count(*) AS count, count(DISTINCT seq) AS nd, min(seq) AS min, max(seq) AS max FROM gatehouse.events WHERE gateway_id = $1',
    [gw],
  );
  return { count: Number(r.count), distinct: Number(r.nd), min: Number(r.min ?? 0), max: Number(r.max ?? 0) };
}

import { loadConfig, type GatehouseConfig } from '@gatehouse/core';
import type { AgentLogger } from '../src/log.js';

export function load(path: string): GatehouseConfig {
  const r = loadConfig(path, process.env, { secrets: true });
  if (!r.ok) throw r.error;
  return r.value;
}

/** A logger that keeps lines for assertions. */
export function memLogger(): AgentLogger & { lines: Array<{ level: string; msg: string } & Record<string, unknown>> } {
  const lines: Array<{ level: string; msg: string } & Record<string, unknown>> = [];
  return { lines, log: (level, msg, fields = {}) => lines.push({ level, msg, ...fields }) };
}
