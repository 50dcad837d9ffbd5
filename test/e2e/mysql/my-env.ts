/**
 * Real MariaDB for the MySQL connector's end-to-end tests: a throwaway database and user
 * (with a password: the gateway's upstream credential) on the local server (127.0.0.1:3306,
 * root without a password), and helpers that run the real `mariadb` CLI and mysql2.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
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
    const child = execFile('mariadb', ['-h', addr.host, '-P', String(addr.port), '-u', 'app', `-p${token}`, '--batch', '--skip-column-names', ...args], { timeout: 20_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
    if (input !== undefined) child.stdin?.end(input);
    else child.stdin?.end();
  });
}
