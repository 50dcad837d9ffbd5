/**
 * The `gatehouse` command with this build's connector modules: `log.level` decides what
 * reaches standard output, a connector type with no module stops the start with the line,
 * and the offline audit tools load a config with connectors whose secrets are not set.
 */
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AuditEvent } from '@gatehouse/core';
import { writeStatements } from '../../lib/audit.js';
import type { TapTest } from '../../lib/tap.js';

const BIN = fileURLToPath(new URL('../../../../gateway/bin/gatehouse.js', import.meta.url));
const run = (args: string[], env: NodeJS.ProcessEnv = {}) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 30_000 });

function configIn(t: TapTest, yaml: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'gh-cli-cfg-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'gatehouse.yaml');
  writeFileSync(file, `data_dir: ./data\nadmin: { listen: 127.0.0.1:0 }\n${yaml}`);
  return file;
}

/** Start, wait for the checkpoint key line, stop with SIGTERM; everything printed. */
async function startAndStop(file: string): Promise<string> {
  const child = spawn(process.execPath, [BIN, 'start', '-c', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const deadline = Date.now() + 20_000;
  while (!/checkpoint key/.test(out) && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 50));
  child.kill('SIGTERM');
  await exited;
  return out;
}

t.test('log.level decides which log lines are written', async (t) => {
  const info = await startAndStop(configIn(t, 'connectors: []\n'));
  t.match(info, /"msg":"admin API listening"/, 'info (the default) logs the start');
  const warn = await startAndStop(configIn(t, 'log: { level: warn }\nconnectors: []\n'));
  t.match(warn, /gatehouse: admin on http:\/\/127\.0\.0\.1:\d+/, 'the command still prints its addresses');
  t.notMatch(warn, /"level":30/, 'no info lines at level warn');
  t.notMatch(warn, /admin API listening/);
});

t.test('a connector type with no module stops the start with file, line and key', async (t) => {
  const file = configIn(t, 'connectors:\n  - { name: db, type: oracle, listen: 127.0.0.1:0, upstream: { address: 127.0.0.1:1521 } }\n');
  const r = run(['start', '-c', file]);
  t.equal(r.status, 2);
  t.match(r.stderr, /gatehouse\.yaml:4: connectors\[0\]\.type: connector type "oracle" is not available in this build \(this build has: postgres, http, mysql/);
});

t.test('offline audit tools load connectors without their secrets', async (t) => {
  const file = configIn(
    t,
    `connectors:
  - name: db
    type: postgres
    listen: 127.0.0.1:0
    upstream: { address: 127.0.0.1:5432, database: app, user: app, password: "\${env:CLI_CFG_PG_PASSWORD}" }
`,
  );
  const env = { CLI_CFG_PG_PASSWORD: '' };
  const start = run(['start', '-c', file], env);
  t.match(start.stderr, /gatehouse\.yaml:7: connectors\[0\]\.upstream\.password: environment variable CLI_CFG_PG_PASSWORD is not set/, 'start needs it');
  await writeStatements(join(dirname(file), 'data'), 'gatehouse', '00000000-0000-4000-8000-000000000003', ['select 1']);
  const exp = run(['audit', 'export', '-c', file], env);
  t.equal(exp.status, 0, exp.stderr);
  t.equal((JSON.parse(exp.stdout) as AuditEvent).unit?.text, 'select 1', 'export reads the log');
  const verify = run(['audit', 'verify', '-c', file], env);
  t.equal(verify.status, 0, verify.stderr);
  const bad = configIn(t, 'connectors:\n  - { name: db, type: postgres, listen: 127.0.0.1:0, upstream: { address: 127.0.0.1:5432, database: app, user: app, port: 1 } }\n');
  t.match(run(['audit', 'export', '-c', bad]).stderr, /gatehouse\.yaml:4: connectors\[0\]\.upstream\.port: unknown key "port"/, 'but still validate the keys');
});
