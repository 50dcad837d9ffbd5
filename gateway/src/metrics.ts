/** Prometheus metrics of one gateway (own registry: no global state, tests can run several). */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { SessionMetrics } from '@gatehouse/core';
import type { AuditLog } from '@gatehouse/audit';

export interface GatewayMetrics extends SessionMetrics {
  registry: Registry;
}

/** The audit log's state is read at each scrape, so the gauges can never disagree with /healthz. */
export function createMetrics(audit: Pick<AuditLog, 'failure' | 'stats' | 'onSyncLatency'>): GatewayMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'gatehouse_process_' });
  const sessions = new Gauge({ name: 'gatehouse_sessions_open', help: 'Open authenticated sessions', labelNames: ['connector'], registers: [registry] });
  const sessionsTotal = new Counter({ name: 'gatehouse_sessions_total', help: 'Sessions started', labelNames: ['connector'], registers: [registry] });
  const authFailures = new Counter({ name: 'gatehouse_auth_failures_total', help: 'Failed authentications', labelNames: ['connector', 'code'], registers: [registry] });
  const units = new Counter({
    name: 'gatehouse_units_total',
    help: 'Units of work (statements, requests, commands) by decision',
    labelNames: ['connector', 'action'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'gatehouse_unit_duration_seconds',
    help: 'Time from a unit arriving to its final reply',
    labelNames: ['connector'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
    registers: [registry],
  });
  new Gauge({
    name: 'gatehouse_audit_failed',
    help: '1 when the audit log cannot write (work is refused)',
    registers: [registry],
    collect() {
      this.set(audit.failure !== null ? 1 : 0);
    },
  });
  auditWriterMetrics(registry, audit);
  return {
    registry,
    sessionOpened: (c) => {
      sessions.inc({ connector: c });
      sessionsTotal.inc({ connector: c });
    },
    sessionClosed: (c) => sessions.dec({ connector: c }),
    authFailure: (c, code) => authFailures.inc({ connector: c, code }),
    unit: (c, action, ms) => {
      units.inc({ connector: c, action });
      duration.observe({ connector: c }, ms / 1000);
    },
  };
}

/**
 * The writer's group commits (reported by its thread once a second): events per commit is
 * events_total / commits_total, and the sync histogram is the fsync latency that strict
 * durability waits for.
 */
function auditWriterMetrics(registry: Registry, audit: Pick<AuditLog, 'stats' | 'onSyncLatency'>): void {
  const totals = (name: string, help: string, field: 'commits' | 'events' | 'syncs' | 'syncSeconds') => {
    let seen = 0;
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        const now = audit.stats()[field];
        if (now > seen) this.inc(now - seen);
        seen = now;
      },
    });
  };
  totals('gatehouse_audit_commits_total', 'Audit store transactions committed', 'commits');
  totals('gatehouse_audit_events_total', 'Audit events committed', 'events');
  totals('gatehouse_audit_syncs_total', 'fsyncs of the audit WAL', 'syncs');
  totals('gatehouse_audit_sync_seconds_total', 'Time spent in fsyncs of the audit WAL', 'syncSeconds');
  const latency = new Histogram({
    name: 'gatehouse_audit_sync_seconds',
    help: 'Latency of each fsync of the audit WAL (what a strict reply waits for, besides the commit)',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5],
    registers: [registry],
  });
  audit.onSyncLatency = (s) => latency.observe(s);
}
