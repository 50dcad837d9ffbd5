/**
 * Strict group commit: Gatehouse `full` (rules, masking, strict audit: every statement's
 * event is durable before its reply) under pgbench `-S -M prepared`, closed loop, at several
 * client counts. Statements/s from pgbench; events from the audit DB's sequence; commits and
 * commit latency from /metrics or, failing that, an strace of the writer's WAL fsyncs.
 *
 * 128 clients need 128 upstream sessions, more than the shared server's max_connections
 * (100), so this part runs on a throwaway cluster of its own (fsync off in PostgreSQL: only
 * the gateway's audit fsyncs are measured).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { TOKENS } from '../../lib/gateway.js';
import { startTestCluster, stopTestCluster } from '../../lib/postgres.js';
import {
  auditSeq,
  buildHasCommitMetrics,
  commitsFromMetrics,
  commitsFromStrace,
  parseStrace,
  scrapeAuditMetrics,
  straceWrap,
  NO_COMMIT_FIGURES,
  type CommitFigures,
  type MetricSample,
} from '../lib/audit-stats.js';
import type { BenchConfig } from '../lib/config.js';
import { auditYaml, startGatehouse } from '../lib/gatehouse.js';
import { pgbench } from '../lib/pgbench.js';
import { run, sleep } from '../lib/proc.js';
import { round, type Latency } from '../lib/stats.js';
import { pgConnectorYaml } from './suite.js';

const REPO = resolve(new URL('../../../..', import.meta.url).pathname);

export interface GroupCommitRow extends CommitFigures {
  clients: number;
  statementsPerSec: number;
  events: number;
  eventsPerSec: number;
  latency: Latency;
  errors: number;
}

export interface GroupCommitResult {
  rows: GroupCommitRow[];
  note: string;
}

export async function groupCommitSuite(cfg: BenchConfig, log: (s: string) => void): Promise<GroupCommitResult> {
  const dir = mkdtempSync(join(tmpdir(), 'gh-bench-gc-'));
  const maxClients = Math.max(...cfg.groupCommitClients);
  const cluster = await startTestCluster(dir, {
    hba: ['local all all trust', 'host all all 127.0.0.1/32 trust'],
    conf: [`max_connections = ${maxClients + 40}`, 'log_connections = off', 'shared_buffers = 64MB'],
  });
  const owner = { database: 'postgres', role: 'postgres' };
  const useMetrics = buildHasCommitMetrics(REPO);
  const straceLog = join(dir, 'fsync.strace');
  const wrap = useMetrics ? null : straceWrap(straceLog);
  const note = useMetrics
    ? 'commits, fsyncs and fsync latency from /metrics (gatehouse_audit_commits_total, _events_total, _syncs_total, the gatehouse_audit_sync_seconds histogram: its p99 is the upper bound of the bucket holding it), scraped in idle gaps between runs (the writer reports once a second)'
    : wrap
      ? 'the gateway exports no audit commit metrics: commits are the fsync/fdatasync calls on the audit WAL (strace --seccomp-bpf -f), commit latency their wall time'
      : 'no commit figures: the gateway exports no audit commit metrics and strace is not installed';
  try {
    await run('pgbench', ['-i', '-q', '-s', '1', '-h', '127.0.0.1', '-p', String(cluster.port), '-U', 'postgres', 'postgres'], { timeout: 300_000 });
    const gw = await startGatehouse({ connectors: pgConnectorYaml(owner, 'full', { pgPort: cluster.port, password: false }), audit: auditYaml('full'), ...(wrap ? { wrap } : {}) });
    const endpoint = { ...gw.address('pg'), user: 'bench', password: TOKENS.billing, database: 'postgres' };
    const windows: { clients: number; t0: number; t1: number; events: number; m0: MetricSample | null; m1: MetricSample | null; r: Awaited<ReturnType<typeof pgbench>> }[] = [];
    try {
      await pgbench(endpoint, { clients: 8, seconds: Math.max(1, cfg.warmSeconds) });
      for (const clients of cfg.groupCommitClients) {
        // pgbench's -T clock runs while its clients connect, and pgbench prints no rate at all
        // for a run that processed nothing: 128 strict logins through the gateway (each a
        // session.start fsync) take seconds on a loaded machine, so give large runs longer.
        const seconds = Math.max(clients >= 64 ? 5 : 2, cfg.seconds);
        // The writer reports its counters once a second: scrape in an idle gap so each window is exact.
        if (useMetrics) await sleep(1200);
        log(`group-commit: ${clients} clients`);
        const m0 = useMetrics ? await scrapeAuditMetrics(gw.adminUrl) : null;
        const s0 = auditSeq(gw.dataDir);
        const t0 = Date.now() / 1000;
        const r = await pgbench(endpoint, { clients, seconds });
        const t1 = Date.now() / 1000;
        const events = auditSeq(gw.dataDir) - s0;
        if (useMetrics) await sleep(1200);
        const m1 = useMetrics ? await scrapeAuditMetrics(gw.adminUrl) : null;
        windows.push({ clients, t0, t1, events, m0, m1, r });
      }
    } finally {
      await gw.stop();
    }
    const calls = wrap ? parseStrace(straceLog) : [];
    const rows = windows.map((w): GroupCommitRow => {
      const seconds = w.t1 - w.t0;
      const commit: CommitFigures = w.m0 && w.m1 ? commitsFromMetrics(w.m0, w.m1, seconds) : wrap ? commitsFromStrace(calls, w.t0, w.t1, w.events) : NO_COMMIT_FIGURES;
      const row = {
        clients: w.clients,
        statementsPerSec: round(w.r.rate, 0),
        events: w.events,
        eventsPerSec: round(w.events / seconds, 0),
        latency: w.r.latency,
        errors: w.r.errors,
        ...commit,
      };
      log(`  ${JSON.stringify(row)}`);
      return row;
    });
    return { rows, note };
  } finally {
    await stopTestCluster(dir);
    rmSync(dir, { recursive: true, force: true });
  }
}
