/**
 * Real PostgreSQL for the connector's end-to-end tests: a throwaway role and database on
 * the local server (127.0.0.1:5432, trust auth for `postgres`), and helpers that run the
 * real `psql` / `pgbench` clients against an address.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);

export const ADMIN = { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'postgres' };

export interface TestDb {
  database: string;
  role: string;
  password: string;
  drop(): Promise<void>;
}

/** A fresh role (LOGIN, password) owning a fresh database; both dropped by `drop()`. */
export async function createTestDb(prefix: string): Promise<TestDb> {
  const suffix = randomBytes(4).toString('hex');
  const role = `gh_${prefix}_${suffix}`;
  const database = `gh_${prefix}_${suffix}`;
  const password = `pw-${randomBytes(8).toString('hex')}`;
  const admin = new pg.Client(ADMIN);
  await admin.connect();
  try {
    await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD '${password}'`);
    await admin.query(`CREATE DATABASE ${database} OWNER ${role}`);
  } finally {
    await admin.end();
  }
  return {
    database,
    role,
    password,
    async drop() {
      const c = new pg.Client(ADMIN);
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
        await c.query(`DROP ROLE IF EXISTS ${role}`);
      } finally {
        await c.end();
      }
    },
  };
}

/** Query the test database directly (as its owner, bypassing the gateway). */
export async function direct<T extends pg.QueryResultRow = pg.QueryResultRow>(db: TestDb, sql: string, params: unknown[] = []): Promise<pg.QueryResult<T>> {
  const c = new pg.Client({ ...ADMIN, user: db.role, database: db.database });
  await c.connect();
  try {
    return await c.query<T>(sql, params);
  } finally {
    await c.end();
  }
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run a client binary; never throws on a non-zero exit (tests assert on it). */
export async function runClient(cmd: string, args: string[], env: Record<string, string>, opts: { cwd?: string; timeoutMs?: number } = {}): Promise<ExecResult> {
  try {
    const { stdout, stderr } = await run(cmd, args, { env: { ...process.env, ...env }, cwd: opts.cwd, timeout: opts.timeoutMs ?? 30_000, maxBuffer: 16 << 20 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof x.code === 'number' ? x.code : -1, stdout: x.stdout ?? '', stderr: x.stderr ?? String(e) };
  }
}

/** psql through the gateway: the token is the password, the user name is free text. */
export function psql(addr: { host: string; port: number }, token: string, args: string[], opts: { sslmode?: string; cwd?: string } = {}): Promise<ExecResult> {
  const conn = `host=${addr.host} port=${addr.port} user=anything dbname=whatever sslmode=${opts.sslmode ?? 'require'}`;
  return runClient('psql', ['-X', '-v', 'ON_ERROR_STOP=0', '-At', conn, ...args], { PGPASSWORD: token, PGCONNECT_TIMEOUT: '10' }, opts);
}

/** A pg.Client connected through the gateway. */
export async function gatewayClient(addr: { host: string; port: number }, token: string, extra: Partial<pg.ClientConfig> = {}): Promise<pg.Client> {
  const c = new pg.Client({ host: addr.host, port: addr.port, user: 'anything', database: 'whatever', password: token, ...extra });
  await c.connect();
  return c;
}
