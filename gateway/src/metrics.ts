/** Prometheus metrics of one gateway (own registry: no global state, tests can run several). */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry, type Metric } from 'prom-client';
import type { Decision } from '@gatehouse/core';
import type { SessionMetrics } from '@gatehouse/core';
import type { AuditLog } from '@gatehouse/audit';

export interface GatewayMetrics extends SessionMetrics {
  registry: Registry;
}

/**
 * The audit log's state is read at each scrape, so the gauges can never disagree with /healthz.
 * `audit` null: a connection worker, whose audit log is the primary's (the primary adds the
 * audit series when it aggregates the workers' registries at scrape time).
 */
export function createMetrics(audit: Pick<AuditLog, 'failure' | 'stats' | 'onSyncLatency'> | null): GatewayMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'gatehouse_process_' });
  const sessions = new Gauge({ name: 'gatehouse_sessions_open', help: 'Open authenticated sessions', labelNames: ['connector'], registers: [registry] });
  const sessionsTotal = new Counter({ name: 'gatehouse_sessions_total', help: 'Sessions started', labelNames: ['connector'], registers: [registry] });
  const authFailures = new Counter({ name: 'gatehouse_auth_failures_total', help: 'Failed authentications', labelNames: ['connector', 'code'], registers: [registry] });
  const units = new UnitMetrics();
  registry.registerMetric(units.counter());
  registry.registerMetric(units.histogram());
  if (audit) {
    new Gauge({
      name: 'gatehouse_audit_failed',
      help: '1 when the audit log cannot write (work is refused)',
      registers: [registry],
      collect() {
        this.set(audit.failure !== null ? 1 : 0);
      },
    });
    auditWriterMetrics(registry, audit);
  }
  return {
    registry,
    sessionOpened: (c) => {
      sessions.inc({ connector: c });
      sessionsTotal.inc({ connector: c });
    },
    sessionClosed: (c) => sessions.dec({ connector: c }),
    authFailure: (c, code) => authFailures.inc({ connector: c, code }),
    unit: (c, action, ms) => units.observe(c, action, ms),
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

/** Upper bounds (seconds) of gatehouse_unit_duration_seconds. */
const UNIT_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5];

interface UnitCounts {
  actions: Record<Decision['action'], number>;
  /** Per bucket (not cumulative); the last slot is +Inf. */
  buckets: Float64Array;
  sum: number;
  count: number;
}

/**
 * Units per decision and their durations, counted with a few additions per unit — this runs
 * for every statement, and prom-client's own Counter/Histogram validate and hash the label
 * object on each call. The numbers become Prometheus series only when scraped: two metric
 * objects in prom-client's collection shape (name, help, type, get()).
 */
class UnitMetrics {
  private readonly byConnector = new Map<string, UnitCounts>();

  observe(connector: string, action: Decision['action'], ms: number): void {
    let c = this.byConnector.get(connector);
    if (!c) {
      c = { actions: { allow: 0, deny: 0, review: 0 }, buckets: new Float64Array(UNIT_BUCKETS.length + 1), sum: 0, count: 0 };
      this.byConnector.set(connector, c);
    }
    c.actions[action]++;
    const s = ms / 1000;
    let i = 0;
    while (i < UNIT_BUCKETS.length && s > UNIT_BUCKETS[i]) i++;
    c.buckets[i]++;
    c.sum += s;
    c.count++;
  }

  counter(): Metric {
    const values = () => {
      const out: Array<{ labels: Record<string, string>; value: number }> = [];
      for (const [connector, c] of this.byConnector) {
        for (const action of ['allow', 'deny', 'review'] as const) if (c.actions[action] > 0) out.push({ labels: { connector, action }, value: c.actions[action] });
      }
      return out;
    };
    return collected('gatehouse_units_total', 'Units of work (statements, requests, commands) by decision', 'counter', values);
  }

  histogram(): Metric {
    const name = 'gatehouse_unit_duration_seconds';
    const values = () => {
      const out: Array<{ labels: Record<string, string | number>; value: number; metricName: string }> = [];
      for (const [connector, c] of this.byConnector) {
        let cumulative = 0;
        for (let i = 0; i < UNIT_BUCKETS.length; i++) {
          cumulative += c.buckets[i];
          out.push({ labels: { le: UNIT_BUCKETS[i], connector }, value: cumulative, metricName: `${name}_bucket` });
        }
        out.push({ labels: { le: '+Inf', connector }, value: c.count, metricName: `${name}_bucket` });
        out.push({ labels: { connector }, value: c.sum, metricName: `${name}_sum` });
        out.push({ labels: { connector }, value: c.count, metricName: `${name}_count` });
      }
      return out;
    };
    return collected(name, 'Time from a unit arriving to its final reply', 'histogram', values);
  }
}

/** A metric whose series are computed at scrape time, in the shape prom-client's Registry collects. */
function collected(name: string, help: string, type: 'counter' | 'histogram', values: () => unknown[]): Metric {
  const metric = { name, help, type, aggregator: 'sum', get: () => Promise.resolve({ name, help, type, values: values(), aggregator: 'sum' }), reset: () => {} };
  return metric as unknown as Metric;
}
