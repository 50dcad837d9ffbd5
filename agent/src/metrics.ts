/** Prometheus text exposition of the agent's state, on its own listen address (node:http, GET /metrics). */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SinkStats {
  shippedSeq: number;
  shippedEvents: number;
  errors: number;
  /** When the oldest batch this sink has not shipped was read (0: none pending). */
  oldestPendingAt: number;
}

export class AgentMetrics {
  readonly sinks = new Map<string, SinkStats>();
  verifiedSeq = 0;
  localSeq = 0;
  verificationFailures = 0;
  alerts = 0;
  halted = false;
  bufferedEvents = 0;

  constructor(private readonly gatewayId: string) {}

  sink(name: string): SinkStats {
    let s = this.sinks.get(name);
    if (!s) this.sinks.set(name, (s = { shippedSeq: 0, shippedEvents: 0, errors: 0, oldestPendingAt: 0 }));
    return s;
  }

  render(now = Date.now()): string {
    const gw = `gateway_id="${this.gatewayId}"`;
    const out: string[] = [];
    const metric = (name: string, type: 'gauge' | 'counter', help: string, rows: Array<[string, number]>) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, v] of rows) out.push(`${name}{${labels}} ${v}`);
    };
    const per = (f: (s: SinkStats) => number): Array<[string, number]> => [...this.sinks].map(([n, s]) => [`${gw},sink="${n}"`, f(s)]);
    metric('gatehouse_agent_local_seq', 'gauge', 'Highest sequence number in the local audit log.', [[gw, this.localSeq]]);
    metric('gatehouse_agent_verified_seq', 'gauge', 'Highest sequence number verified (chain, tree, checkpoints).', [[gw, this.verifiedSeq]]);
    metric(
      'gatehouse_agent_shipped_seq',
      'gauge',
      'Highest sequence number durably shipped, per sink.',
      per((s) => s.shippedSeq),
    );
    metric(
      'gatehouse_agent_shipped_events_total',
      'counter',
      'Events shipped by this process, per sink.',
      per((s) => s.shippedEvents),
    );
    metric(
      'gatehouse_agent_lag_events',
      'gauge',
      'Events in the local log not yet shipped, per sink.',
      per((s) => Math.max(0, this.localSeq - s.shippedSeq)),
    );
    metric(
      'gatehouse_agent_lag_seconds',
      'gauge',
      'Age of the oldest verified batch not yet shipped, per sink.',
      per((s) => (s.oldestPendingAt ? (now - s.oldestPendingAt) / 1000 : 0)),
    );
    metric(
      'gatehouse_agent_sink_errors_total',
      'counter',
      'Failed attempts to ship (each is retried), per sink.',
      per((s) => s.errors),
    );
    metric('gatehouse_agent_verification_failures_total', 'counter', 'Gaps, bad hashes, bad checkpoints and rollbacks found.', [[gw, this.verificationFailures]]);
    metric('gatehouse_agent_alerts_total', 'counter', 'Alerts raised.', [[gw, this.alerts]]);
    metric('gatehouse_agent_halted', 'gauge', '1 when shipping stopped on a verification failure.', [[gw, this.halted ? 1 : 0]]);
    metric('gatehouse_agent_buffered_events', 'gauge', 'Verified events held in memory for sinks.', [[gw, this.bufferedEvents]]);
    return out.join('\n') + '\n';
  }
}

/** Serves GET /metrics; resolves with the bound address (port 0 picks a free one). */
export async function serveMetrics(m: AgentMetrics, listen: string): Promise<{ server: Server; address: string }> {
  const i = listen.lastIndexOf(':');
  const host = listen.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(listen.slice(i + 1));
  const server = createServer((req, res) => {
    if (req.method === 'GET' && (req.url === '/metrics' || req.url?.startsWith('/metrics?'))) {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(m.render());
    } else if (req.method === 'GET' && req.url === '/healthz') {
      res.writeHead(m.halted ? 503 : 200, { 'content-type': 'text/plain' }).end(m.halted ? 'halted\n' : 'ok\n');
    } else res.writeHead(404).end();
  });
  server.requestTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const a = server.address() as AddressInfo;
  return { server, address: `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}` };
}
