/**
 * The gateway's own unit metrics (counted per unit without prom-client's per-call label
 * hashing) must scrape exactly as prom-client's Counter and Histogram would.
 */
import t from 'tap';
import { Counter, Histogram, Registry } from 'prom-client';
import { createMetrics } from '../src/metrics.js';

const audit = { failure: null, stats: () => ({ commits: 3, events: 7, syncs: 2, syncSeconds: 0.004 }), onSyncLatency: null as ((s: number) => void) | null };

const series = (text: string, name: string) =>
  text
    .split('\n')
    .filter((l) => l.startsWith(name))
    .sort();

t.test('unit counter and duration histogram scrape like prom-client', async (t) => {
  const m = createMetrics(audit);
  const ref = new Registry();
  const units = new Counter({ name: 'gatehouse_units_total', help: 'x', labelNames: ['connector', 'action'], registers: [ref] });
  const duration = new Histogram({
    name: 'gatehouse_unit_duration_seconds',
    help: 'x',
    labelNames: ['connector'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
    registers: [ref],
  });
  const seen: Array<[string, 'allow' | 'deny' | 'review', number]> = [
    ['db', 'allow', 0.2],
    ['db', 'allow', 0.5],
    ['db', 'deny', 3],
    ['api', 'allow', 12],
    ['api', 'review', 7000],
    ['db', 'allow', 1],
  ];
  for (const [c, a, ms] of seen) {
    m.unit(c, a, ms);
    units.inc({ connector: c, action: a });
    duration.observe({ connector: c }, ms / 1000);
  }
  const got = await m.registry.metrics();
  const want = await ref.metrics();
  t.same(series(got, 'gatehouse_units_total'), series(want, 'gatehouse_units_total'));
  t.same(series(got, 'gatehouse_unit_duration_seconds'), series(want, 'gatehouse_unit_duration_seconds'));
  t.match(got, /# TYPE gatehouse_unit_duration_seconds histogram/);
  t.match(got, /gatehouse_units_total\{connector="db",action="allow"\} 3/);
  t.match(got, /gatehouse_unit_duration_seconds_bucket\{le="\+Inf",connector="api"\} 2/);
});

t.test('audit writer figures come from the log and sync latencies are observed', async (t) => {
  const m = createMetrics(audit);
  t.type(audit.onSyncLatency, 'function', 'the histogram subscribed');
  audit.onSyncLatency?.(0.0003);
  audit.onSyncLatency?.(0.02);
  const text = await m.registry.metrics();
  t.match(text, /gatehouse_audit_commits_total 3/);
  t.match(text, /gatehouse_audit_events_total 7/);
  t.match(text, /gatehouse_audit_syncs_total 2/);
  t.match(text, /gatehouse_audit_sync_seconds_count 2/);
  t.match(text, /gatehouse_audit_sync_seconds_bucket\{le="0.0005"\} 1/);
  t.match(text, /gatehouse_audit_failed 0/);
  // A second scrape does not count the same commits twice.
  t.match(await m.registry.metrics(), /gatehouse_audit_commits_total 3/);
});
