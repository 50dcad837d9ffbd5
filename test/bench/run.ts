/**
 * `make bench`: every connector's benchmark side by side with its baselines, in one run.
 * Prints the JSON summary (one line), then the table; writes docs/benchmarks.md and
 * docs/benchmarks-latency.svg (or into BENCH_DOC_DIR). Knobs: test/bench/lib/config.ts.
 *
 *   npx tsc -b test && node test/dist/bench/run.js
 *
 * A part that fails is reported in the summary's `failures` and the run goes on: one broken
 * connector must not hide the figures of the others.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg, setPriority } from 'node:os';
import { join } from 'node:path';
import { httpSuite } from './http/suite.js';
import { benchConfig, type Part } from './lib/config.js';
import { benchmarksMarkdown } from './lib/doc.js';
import { machineFacts } from './lib/machine.js';
import type { TargetResult } from './lib/measure.js';
import { chartRows, derive, groupCommitTable, largeTable, mainTable, sshTables, type Summary } from './lib/report.js';
import { round } from './lib/stats.js';
import { latencyChart } from './lib/svg.js';
import { mysqlSuite } from './mysql/suite.js';
import { groupCommitSuite } from './postgres/group-commit.js';
import { largeResultSuite } from './postgres/large-results.js';
import { postgresSuite } from './postgres/suite.js';
import { sshSuite } from './ssh/suite.js';

const SVG = 'benchmarks-latency.svg';

function commandLine(): string {
  const env = Object.entries(process.env)
    .filter(([k]) => k.startsWith('BENCH_') && k !== 'BENCH_DOC_DIR')
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  return `${env ? env + ' ' : ''}make bench   # = scripts/ensure-system-deps.sh bench && ${env ? env + ' ' : ''}node test/dist/bench/run.js`;
}

async function main(): Promise<void> {
  const cfg = benchConfig();
  const log = (s: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${s}\n`);
  // On a machine shared with other test suites, a negative nice value (root only) keeps their
  // bursts out of this run's latency tails; everything this driver starts inherits it (the
  // shared PostgreSQL and MariaDB servers do not).
  if (cfg.nice !== 0) setPriority(0, cfg.nice);
  const machine = await machineFacts(cfg.smoke ? 200 : 2000);
  log(`machine: ${JSON.stringify(machine)}`);
  const summary: Summary = { bench: 'gatehouse', config: cfg, machine, rows: [], groupCommit: null, large: null, ssh: null, failures: {}, notes: [] };
  const results: TargetResult[] = [];
  const part = async <T>(name: Part, f: () => Promise<T>): Promise<T | null> => {
    if (!cfg.parts.includes(name)) return null;
    try {
      return await f();
    } catch (e) {
      const msg = e instanceof Error ? (e.stack ?? e.message) : String(e);
      log(`${name} FAILED: ${msg}`);
      summary.failures[name] = msg;
      return null;
    }
  };
  results.push(...((await part('postgres', () => postgresSuite(cfg, log))) ?? []));
  results.push(...((await part('http', () => httpSuite(cfg, log))) ?? []));
  results.push(...((await part('mysql', () => mysqlSuite(cfg, log))) ?? []));
  summary.groupCommit = await part('group-commit', () => groupCommitSuite(cfg, log));
  summary.large = await part('large', () => largeResultSuite(cfg, log));
  summary.ssh = await part('ssh', () => sshSuite(cfg, log));
  summary.rows = derive(results);
  machine.loadAvgEnd = loadavg().map((x) => round(x, 2));

  process.stdout.write(JSON.stringify(summary) + '\n\n');
  process.stdout.write(mainTable(summary.rows));
  if (summary.groupCommit) process.stdout.write(`\nStrict group commit\n${groupCommitTable(summary.groupCommit)}`);
  if (summary.large) process.stdout.write(`\nLarge result\n${largeTable(summary.large)}`);
  if (summary.ssh) process.stdout.write(`\nSSH\n${sshTables(summary.ssh)}`);

  mkdirSync(cfg.docDir, { recursive: true });
  writeFileSync(join(cfg.docDir, SVG), latencyChart(chartRows(summary.rows), `Latency added over direct at the fixed offered rate (${machine.date.slice(0, 10)})`));
  writeFileSync(join(cfg.docDir, 'benchmarks.md'), benchmarksMarkdown(summary, commandLine(), SVG));
  log(`wrote ${join(cfg.docDir, 'benchmarks.md')} and ${SVG}`);
  if (Object.keys(summary.failures).length) process.exitCode = 1;
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
