/**
 * Real MariaDB for the MySQL connector's end-to-end tests: a throwaway database and user
 * (with a password: the gateway's upstream credential) on the local server (127.0.0.1:3306,
 * root without a password), and helpers that run the real `mariadb` CLI and mysql2.
 */
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';

export const ROOT = { host: '127.0.0.1', port: 3306, user: 'root' };

export interface TestDb {
  database: string;
  user: string;
  password: string;
  drop(): Promise<void>;
}

export async function createTestDb(prefix: string): Promise<TestDb> {
  const suffix = randomBytes(4).toString('hex');
  const database = `gh_${prefix}_${suffix}`;
  const user = `gh_${prefix}_${suffix}`;
  const password = `pw-${randomBytes(8).toString('hex')}`;
  const c = await mysql.createConnection(ROOT);
  try {
    await c.query(`CREATE DATABASE \`${database}\``);
    await c.query(`CREATE USER '${user}'@'%' IDENTIFIED BY '${password}'`);
    await c.query(`GRANT ALL ON \`${database}\`.* TO '${user}'@'%'`);
  } finally {
    await c.end();
  }
  return {
    database,
    user,
    password,
    async drop() {
      const d = await mysql.createConnection(ROOT);
      try {
        await d.query(`DROP DATABASE IF EXISTS \`${database}\``);
        await d.query(`DROP USER IF EXISTS '${user}'@'%'`);
      } finally {
        await d.end();
      }
    },
  };
}

/** Statements run directly on the test database as its user (multi-statements allowed). */
export async function direct(db: TestDb, sql: string): Promise<unknown> {
  const c = await mysql.createConnection({ ...ROOT, user: db.user, password: db.password, database: db.database, multipleStatements: true });
  try {
    const [rows] = await c.query(sql);
    return rows;
  } finally {
    await c.end();
  }
}

/** A mysql2 connection through the gateway with `token` as the password. */
export function gatewayConn(addr: { host: string; port: number }, token: string, o: mysql.ConnectionOptions = {}): Promise<mysql.Connection> {
  return mysql.createConnection({ host: addr.host, port: addr.port, user: 'app', password: token, ...o });
}

export const TLS = { ssl: { rejectUnauthorized: false } } as const;

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** The real `mariadb` CLI through the gateway (batch mode), `input` on stdin. */
export function mariadb(addr: { host: string; port: number }, token: string, args: string[], input?: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(
      'mariadb',
      ['-h', addr.host, '-P', String(addr.port), '-u', 'app', `-p${token}`, '--batch', '--skip-column-names', ...args],
      { timeout: 20_000, encoding: 'utf8' },
      (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
      },
    );
    if (input !== undefined) child.stdin?.end(input);
    else child.stdin?.end();
  });
}

/**
 * A throwaway MariaDB server with TLS (certificate `server.crt` of the test PKI) on a free
 * port, for the upstream TLS modes; user `app` with a password, REQUIRE SSL. Stopped (by its
 * pid) at teardown.
 */
export async function startTlsMariadb(t: { teardown(fn: () => unknown): void }, pki: { file(name: string): string }): Promise<{ address: string; user: string; password: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'gh-mariadb-tls-'));
  const run = (cmd: string, args: string[]) =>
    new Promise<void>((resolve, reject) => execFile(cmd, args, { timeout: 60_000 }, (e) => (e ? reject(new Error(e.message)) : resolve())));
  await run('mariadb-install-db', ['--no-defaults', `--datadir=${dir}/data`, '--auth-root-authentication-method=normal', '--skip-test-db', '--user=root']);
  const port = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
  const child = spawn(
    'mariadbd',
    [
      '--no-defaults',
      `--datadir=${dir}/data`,
      `--port=${port}`,
      '--bind-address=127.0.0.1',
      `--socket=${dir}/sock`,
      `--pid-file=${dir}/pid`,
      `--ssl-cert=${pki.file('server.crt')}`,
      `--ssl-key=${pki.file('server.key')}`,
      '--user=root',
      '--skip-name-resolve',
    ],
    { stdio: 'ignore', detached: false },
  );
  t.teardown(async () => {
    child.kill('SIGTERM');
    await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
    rmSync(dir, { recursive: true, force: true });
  });
  const password = `pw-${randomBytes(8).toString('hex')}`;
  for (let i = 0; ; i++) {
    try {
      const c = await mysql.createConnection({ host: '127.0.0.1', port, user: 'root' });
      await c.query(`CREATE USER 'app'@'%' IDENTIFIED BY '${password}' REQUIRE SSL`);
      await c.query(`GRANT ALL ON *.* TO 'app'@'%'`);
      await c.end();
      break;
    } catch (e) {
      if (i > 100) throw new Error(`throwaway MariaDB did not start: ${(e as Error).message}`, { cause: e });
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return { address: `127.0.0.1:${port}`, user: 'app', password };
}
