/**
 * PostgreSQL for the end-to-end tests: the YAML of a postgres connector in front of a test
 * database, and throwaway PostgreSQL 15 clusters of a test's own (initdb + pg_ctl as the
 * `postgres` OS user, on a free port, the Unix socket in the cluster's directory).
 */
import { execFile } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { connectorsYaml, connectorYaml, type ConnectorYaml } from './gateway.js';
import { freePort } from './net.js';

const run = promisify(execFile);
const PG_BIN = '/usr/lib/postgresql/15/bin';

// ---- connector YAML ----------------------------------------------------------------------

/** A role owning a database on the shared local server (`createTestDb` in e2e/postgres/pg-env.ts). */
export interface DbOwner {
  database: string;
  role: string;
}

/**
 * The `upstream:` flow mapping for a test database on the shared server (127.0.0.1:5432), as
 * its owner; the password comes from `${env:PG_PASSWORD}` unless `password: false` (the
 * shared server trusts local logins). `extra`: more `key: value` pairs of the mapping.
 */
export function dbUpstream(db: DbOwner, sslmode: 'disable' | 'prefer' | 'require', opts: { password?: boolean; extra?: string } = {}): string {
  const password = opts.password === false ? '' : `, password: "\${env:PG_PASSWORD}"`;
  return `{ address: 127.0.0.1:5432, database: ${db.database}, user: ${db.role}${password}, sslmode: ${sslmode}${opts.extra ? `, ${opts.extra}` : ''} }`;
}

/** One postgres item of `connectors:` (name `pg` unless given). */
export function postgresConnector(c: Omit<ConnectorYaml, 'type' | 'name'> & { name?: string }): string {
  return connectorYaml({ ...c, type: 'postgres', name: c.name ?? 'pg' });
}

export { connectorsYaml };

// ---- clusters of a test's own --------------------------------------------------------------

/** Run a command; reject with its stderr (commands here never see a secret on argv). */
export async function sh(cmd: string, args: string[], timeout = 30_000): Promise<string> {
  try {
    return (await run(cmd, args, { timeout, maxBuffer: 16 << 20 })).stdout;
  } catch (e) {
    const x = e as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${x.stderr || x.message}`, { cause: e });
  }
}

/** initdb and postgres refuse to run as root. */
export const asPostgres = (bin: string, args: string[]) => sh('runuser', ['-u', 'postgres', '--', join(PG_BIN, bin), ...args]);

export interface TestClusterOptions {
  /** pg_hba.conf lines. */
  hba: string[];
  /** postgresql.conf lines on top of the defaults (listen_addresses, no fsync, SCRAM, log_connections). */
  conf?: string[];
  /** `listen_addresses` (default 127.0.0.1). */
  listen?: string;
}

export interface TestCluster {
  /** Base directory: the data directory is `data/` in it, and it is the Unix socket directory. */
  dir: string;
  port: number;
  /** The postmaster's stderr (`pg_ctl -l`). */
  logFile: string;
}

/**
 * initdb + start in `dir` (which must exist; the test keeps other files there, e.g. TLS key
 * material the server reads: everything in it is handed to the `postgres` user). Stop it with
 * `stopTestCluster(dir)` before removing `dir`.
 */
export async function startTestCluster(dir: string, o: TestClusterOptions): Promise<TestCluster> {
  await sh('chown', ['-R', 'postgres:postgres', dir]);
  const data = join(dir, 'data');
  const logFile = join(dir, 'server.log');
  await asPostgres('initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions']);
  const conf = [`listen_addresses = '${o.listen ?? '127.0.0.1'}'`, `fsync = off`, `password_encryption = 'scram-sha-256'`, `log_connections = on`, ...(o.conf ?? [])];
  writeFileSync(join(data, 'postgresql.conf'), '\n' + conf.join('\n') + '\n', { flag: 'a' });
  writeFileSync(join(data, 'pg_hba.conf'), o.hba.join('\n') + '\n');
  await sh('chown', ['-R', 'postgres:postgres', dir]);
  // The port was free a moment ago; another suite may take it first, so retry with a new one.
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    try {
      await asPostgres('pg_ctl', ['start', '-w', '-t', '30', '-D', data, '-l', logFile, '-o', `-p ${port} -k ${dir}`]);
      return { dir, port, logFile };
    } catch (e) {
      if (attempt === 3) throw e;
    }
  }
}

export async function stopTestCluster(dir: string): Promise<void> {
  const data = join(dir, 'data');
  if (existsSync(join(data, 'postmaster.pid'))) await asPostgres('pg_ctl', ['stop', '-D', data, '-m', 'immediate', '-w', '-t', '20']).catch(() => {});
}
