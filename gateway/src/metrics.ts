/** Prometheus metrics of one gateway (own registry: no global state, tests can run several). */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { SessionMetrics } from '@gatehouse/core';

export interface GatewayMetrics extends SessionMetrics {
  registry: Registry;
}

/** `auditFailed` is read at each scrape, so the gauge can never disagree with /healthz. */
export function createMetrics(auditFailed: () => boolean): GatewayMetrics {
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
      this.set(auditFailed() ? 1 : 0);
    },
  });
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
