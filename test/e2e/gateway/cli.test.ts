/**
 * The `gatehouse` command as an operator runs it: start prints where it listens and the
 * checkpoint key and stops cleanly on SIGTERM; the audit tools verify, prove and catch
 * tampering.
 */
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import type { AuditEvent } from '@gatehouse/core';
import { writeStatements } from '../../lib/audit.js';

const BIN = fileURLToPath(new URL('../../../../gateway/bin/gatehouse.js', import.meta.url));
const run = (args: string[], env: NodeJS.ProcessEnv = {}) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 30_000 });

function configIn(dir: string): string {
  const file = join(dir, 'gatehouse.yaml');
  writeFileSync(
    file,
    `data_dir: ./data
admin: { listen: 127.0.0.1:0 }
audit: { origin: cli-test }
identity:
  static_tokens:
    - { token: "\${env:CLI_TEST_TOKEN}", subject: "svc:cli", groups: [ops] }
connectors: []
`,
  );
  return file;
}

t.test('start prints its addresses and key, and stops on SIGTERM', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const cfg = configIn(dir);
  const child = spawn(process.execPath, [BIN, 'start', '-c', cfg], { env: { ...process.env, CLI_TEST_TOKEN: 'cli-test-token-0123456789' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const deadline = Date.now() + 20_000;
  while (!/checkpoint key/.test(out) && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 50));
  t.match(out, /admin on http:\/\/127\.0\.0\.1:\d+/);
  t.match(out, /audit checkpoint key cli-test\+[0-9a-f]{8}\+[A-Za-z0-9+/=]+/);
  t.notMatch(out, /cli-test-token-0123456789/, 'the token is never printed');
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  t.equal(await exited, 0, 'exits 0 after draining');
  t.match(out, /stopped/);
});

t.test('a bad config stops the start with the file, line and key', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const cfg = configIn(dir);
  const r = run(['start', '-c', cfg], {});
  t.not(r.status, 0);
  t.match(r.stderr, /gatehouse\.yaml:6: identity\.static_tokens\[0\]\.token: environment variable CLI_TEST_TOKEN is not set/);
});

t.test('audit verify, checkpoint, prove, verify-proof — and tampering is caught', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const cfg = configIn(dir);
  const texts = Array.from({ length: 20 }, (_, i) => `select ${i}`);
  await writeStatements(join(dir, 'data'), 'cli-test', '00000000-0000-4000-8000-000000000002', texts);

  const verify = run(['audit', 'verify', '-c', cfg]);
  t.equal(verify.status, 0, verify.stderr);
  t.match(verify.stdout, /ok: 20 events/);

  const cp = run(['audit', 'checkpoint', '-c', cfg]);
  t.equal(cp.status, 0);
  t.match(cp.stdout, /^cli-test\n20\n/);
  writeFileSync(join(dir, 'cp'), cp.stdout);

  const exp = run(['audit', 'export', '-c', cfg]);
  t.equal(exp.stdout.trim().split('\n').length, 20, 'export prints one JSON line per event');
  t.equal((JSON.parse(exp.stdout.split('\n')[3]) as AuditEvent).unit?.text, 'select 3');

  const proof = run(['audit', 'prove', '-c', cfg, '7']);
  t.equal(proof.status, 0, proof.stderr);
  writeFileSync(join(dir, 'proof.json'), proof.stdout);
  const vp = run(['audit', 'verify-proof', join(dir, 'proof.json'), '--key', join(dir, 'data', 'audit-key.pub')]);
  t.equal(vp.status, 0, vp.stderr);
  t.match(vp.stdout, /event 7 is included/);

  // An investigator's copy of an edited proof must fail.
  const bundle = JSON.parse(proof.stdout) as { event: { unit: { text: string } } };
  bundle.event.unit.text = 'select 700';
  writeFileSync(join(dir, 'bad-proof.json'), JSON.stringify(bundle));
  t.equal(run(['audit', 'verify-proof', join(dir, 'bad-proof.json'), '--key', join(dir, 'data', 'audit-key.pub')]).status, 1);

  // Edit one stored event behind the gateway's back.
  const db = new Database(join(dir, 'data', 'audit.db'));
  const cols = db.prepare(`select name from pragma_table_info('events')`).all() as { name: string }[];
  const jsonCol = cols.find((c) => /json|body|canonical|event/i.test(c.name))?.name;
  t.ok(jsonCol, 'the events table stores the canonical event');
  db.prepare(`update events set ${jsonCol} = replace(${jsonCol}, 'select 12', 'select 99') where seq = 13`).run();
  db.close();
  const tampered = run(['audit', 'verify', '-c', cfg]);
  t.equal(tampered.status, 1);
  t.match(tampered.stderr, /FAILED at seq 13/);
});
