/**
 * `make test` runs the benchmarks only as a smoke: the driver with BENCH_SMOKE=1 (tiny
 * sizes, 1-second runs) must finish and print a well-formed summary with every target of
 * every part and plausible non-zero figures. Structure only — timings are never asserted.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Summary } from '../../bench/lib/report.js';

const REPO = resolve(new URL('../../../..', import.meta.url).pathname);
const EXPECTED: Record<string, string[]> = {
  postgres: ['direct', 'relay', 'pgbouncer', 'gatehouse-passthrough', 'gatehouse-full'],
  http: ['direct', 'relay', 'node-http-undici', 'nginx', 'gatehouse-passthrough', 'gatehouse-full'],
  mysql: ['direct', 'relay', 'gatehouse-passthrough', 'gatehouse-full'],
};

const docDir = mkdtempSync(join(tmpdir(), 'gh-bench-smoke-'));
t.teardown(() => rmSync(docDir, { recursive: true, force: true }));

const { stdout, stderr, code } = await new Promise<{ stdout: string; stderr: string; code: number }>((done) => {
  execFile(
    process.execPath,
    [join(REPO, 'test/dist/bench/run.js')],
    { cwd: REPO, env: { ...process.env, BENCH_SMOKE: '1', BENCH_DOC_DIR: docDir }, maxBuffer: 64 << 20, timeout: 170_000 },
    (err, stdout, stderr) => done({ stdout, stderr, code: err ? (typeof err.code === 'number' ? err.code : 1) : 0 }),
  );
});
// The driver's progress log: what ran, and any part it could not run.
t.comment(
  stderr
    .split('\n')
    .filter((l) => !l.includes('  {'))
    .join('\n'),
);

const line = stdout.split('\n').find((l) => l.startsWith('{"bench":"gatehouse"'));
t.ok(line, 'the driver prints its JSON summary');
const s = JSON.parse(line ?? '{}') as Summary;
t.equal(code, 0, `the driver exits 0 (failures: ${JSON.stringify(s.failures ?? {})})`);
t.same(s.failures, {}, 'no part failed');

t.test('every connector: every target, units served, CPU for each proxy, ratios', async (t) => {
  for (const [protocol, targets] of Object.entries(EXPECTED)) {
    const rows = s.rows.filter((r) => r.protocol === protocol);
    t.same(
      rows.map((r) => r.target),
      targets,
      `${protocol}: all targets in order`,
    );
    for (const r of rows) {
      t.ok(r.fixedRate > 0 && r.saturationRate > 0, `${protocol} ${r.target}: units served at the fixed rate and at saturation`);
      t.ok(r.latency.p50 > 0 && r.latency.p99 >= r.latency.p50, `${protocol} ${r.target}: latency percentiles`);
      t.equal(r.errors, 0, `${protocol} ${r.target}: no errors`);
      if (r.kind === 'direct') {
        t.equal(r.cpuUsPerUnit, null, `${protocol} direct: no proxy CPU`);
        t.equal(r.vsDirect, 1, `${protocol} direct: 1 × itself`);
      } else {
        // /proc counts CPU in 10 ms ticks: in a smoke-length run a C proxy (pgbouncer, nginx)
        // can stay under one tick. Measured means a number; Gatehouse always uses some.
        t.ok(typeof r.cpuUsPerUnit === 'number' && r.cpuUsPerUnit >= 0, `${protocol} ${r.target}: CPU per unit measured`);
        if (r.target.startsWith('gatehouse')) t.ok((r.cpuUsPerUnit ?? 0) > 0, `${protocol} ${r.target}: the gateway's CPU is seen`);
        t.ok((r.vsDirect ?? 0) > 0 && (r.vsRelay ?? 0) > 0, `${protocol} ${r.target}: throughput ratios`);
        t.ok(r.latencyAdded && Number.isFinite(r.latencyAdded.p99), `${protocol} ${r.target}: latency added over direct`);
      }
    }
  }
});

t.test('strict group commit: each client count', async (t) => {
  t.same(
    s.groupCommit?.rows.map((r) => r.clients),
    s.config.groupCommitClients,
  );
  for (const r of s.groupCommit?.rows ?? []) {
    t.ok(r.statementsPerSec > 0 && r.events > 0, `${r.clients} clients: statements and audit events`);
    if (r.source !== 'none') t.ok((r.commits ?? 0) > 0 && (r.eventsPerCommit ?? 0) >= 1, `${r.clients} clients: commits (${r.source})`);
    else t.comment(`${r.clients} clients: no commit figures (${s.groupCommit?.note})`);
  }
});

t.test('large result: every row through, masked, memory read', async (t) => {
  const l = s.large;
  t.ok(l, 'ran');
  t.equal(l?.direct.rows, s.config.largeRows, 'direct: every row');
  t.equal(l?.gatehouse.rows, s.config.largeRows, 'gateway: every row');
  t.equal(l?.gatehouse.clearEmails, 0, 'gateway: masking was on');
  t.ok((l?.ratio ?? 0) > 0 && (l?.gatewayPeakRssMiB ?? 0) > 0, 'ratio and peak RSS');
});

t.test('ssh: scp both ways in both protocols, connection times', async (t) => {
  const x = s.ssh;
  if (x?.skipped) return t.comment(`ssh skipped: ${x.skipped}`);
  t.equal(x?.scp.length, 4, 'sftp and legacy scp, upload and download');
  for (const r of x?.scp ?? []) t.ok(r.directMBps > 0 && r.gatewayMBps > 0, `${r.protocol} ${r.direction}: MB/s`);
  t.ok((x?.directConnectMs.mean ?? 0) > 0 && (x?.gatewayConnectMs.mean ?? 0) > 0 && (x?.connectRatio ?? 0) > 0, 'connection times');
});

t.test('the doc, the chart and the machine facts', async (t) => {
  t.ok(s.machine.nproc > 0 && s.machine.node.startsWith('v'), 'machine facts');
  const md = readFileSync(join(docDir, 'benchmarks.md'), 'utf8');
  t.match(md, /\| postgres \| gatehouse-full \|/, 'benchmarks.md has the table');
  t.ok(existsSync(join(docDir, 'benchmarks-latency.svg')), 'the SVG chart');
  t.match(readFileSync(join(docDir, 'benchmarks-latency.svg'), 'utf8'), /^<svg [^>]*>[\s\S]*<\/svg>\n$/, 'a whole SVG document');
});
