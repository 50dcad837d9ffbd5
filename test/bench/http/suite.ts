/**
 * HTTP side by side: direct to an nginx upstream (small JSON), a bare Node TCP relay, a naive
 * node:http + undici proxy, nginx as a keep-alive reverse proxy (1 worker, the one core a
 * Node process gets), Gatehouse passthrough and full; wrk with 16 connections.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connectorYaml, TOKENS } from '../../lib/gateway.js';
import { startNginx, type Nginx } from '../../e2e/http/nginx.js';
import type { BenchConfig } from '../lib/config.js';
import { auditYaml, startGatehouse, type Mode } from '../lib/gatehouse.js';
import { measureTargets, type TargetResult, type TargetSpec } from '../lib/measure.js';
import { freePort, waitTcp } from '../../lib/net.js';
import { startRelay } from '../lib/relay.js';
import { wrk } from '../lib/wrk.js';

interface HttpEndpoint {
  url: string;
  headers: string[];
}

/** The upstream's answer (one e-mail address and one JSON path for `full` to mask) and the path asked. */
export const HTTP_BENCH_BODY = JSON.stringify({ id: 123, name: 'Ada', email: 'ada@example.com', plan: 'pro', card: { last4: '1111' }, active: true });
export const HTTP_BENCH_PATH = '/v1/customers/7';
const BODY = HTTP_BENCH_BODY;
const PATH = HTTP_BENCH_PATH;

/** nginx as a plain keep-alive reverse proxy (the `upstream` block sits at http level). */
export function startNginxProxy(upstreamPort: number): Promise<Nginx> {
  return startNginx(
    'location / { proxy_pass http://bench_up; proxy_http_version 1.1; proxy_set_header Connection ""; }',
    {},
    1,
    `upstream bench_up { server 127.0.0.1:${upstreamPort}; keepalive 128; }`,
  );
}

/** nginx's master pid (its worker is a child, so the tree is measured). */
const nginxPid = (n: Nginx) => Number(readFileSync(join(n.dir, 'nginx.pid'), 'utf8').trim());

/** The `api` connector of a Gatehouse target: `full` has a rule and masking, `passthrough` neither. */
export function gatehouseHttpYaml(upstreamUrl: string, mode: Mode): string {
  const full = mode === 'full';
  return connectorYaml({
    type: 'http',
    name: 'api',
    upstream: `{ url: ${upstreamUrl}, headers: { Authorization: "Bearer upstream-key-0123456789" } }`,
    rules: full ? ['{ name: no-delete, match: { method: [DELETE] }, action: deny }'] : [],
    masking: full ? ['{ json: ["$.card.last4"], with: redact }', '{ detectors: [email], with: redact }'] : [],
  });
}

function gatehouseHttp(upstreamUrl: string, mode: Mode): TargetSpec<HttpEndpoint> {
  const yaml = gatehouseHttpYaml(upstreamUrl, mode);
  return {
    target: `gatehouse-${mode}`,
    kind: 'gatehouse',
    async start() {
      const gw = await startGatehouse({ connectors: yaml, audit: auditYaml(mode) });
      const { host, port } = gw.address('api');
      return { pid: gw.pid, endpoint: { url: `http://${host}:${port}${PATH}`, headers: [`Authorization: Bearer ${TOKENS.billing}`] }, stop: () => gw.stop() };
    },
  };
}

export async function httpSuite(cfg: BenchConfig, log: (s: string) => void): Promise<TargetResult[]> {
  const upstream = await startNginx(`location / { default_type application/json; return 200 '${BODY}'; }`);
  try {
    const plain = (port: number) => ({ url: `http://127.0.0.1:${port}${PATH}`, headers: [] });
    const targets: TargetSpec<HttpEndpoint>[] = [
      { target: 'direct', kind: 'direct', start: () => Promise.resolve({ pid: null, endpoint: plain(upstream.port), stop: () => Promise.resolve() }) },
      {
        target: 'relay',
        kind: 'relay',
        async start() {
          const r = await startRelay(upstream.port);
          return { pid: r.pid, endpoint: plain(r.port), stop: () => r.stop() };
        },
      },
      {
        target: 'node-http-undici',
        kind: 'relay',
        async start() {
          const port = await freePort();
          const proc = spawn(process.execPath, [new URL('../lib/naive-http-proxy.js', import.meta.url).pathname, upstream.url, String(port)], { stdio: 'ignore' });
          await waitTcp(port);
          return {
            pid: proc.pid as number,
            endpoint: plain(port),
            async stop() {
              proc.kill('SIGTERM');
              await once(proc, 'exit');
            },
          };
        },
      },
      {
        target: 'nginx',
        kind: 'peer',
        async start() {
          const n = await startNginxProxy(upstream.port);
          return { pid: nginxPid(n), endpoint: plain(n.port), stop: () => n.stop() };
        },
      },
      gatehouseHttp(upstream.url, 'passthrough'),
      gatehouseHttp(upstream.url, 'full'),
    ];
    const c = cfg.http.connections;
    return await measureTargets(
      {
        protocol: 'http',
        unit: 'request',
        offeredRate: cfg.http.rate,
        warmUp: !cfg.warmSeconds ? undefined : (e) => wrk(e.url, { connections: c, seconds: cfg.warmSeconds, headers: e.headers }),
        fixed: (e) => wrk(e.url, { connections: c, seconds: cfg.seconds, rate: cfg.http.rate, headers: e.headers }),
        saturate: (e) => wrk(e.url, { connections: c, seconds: cfg.seconds, headers: e.headers }),
      },
      targets,
      log,
    );
  } finally {
    await upstream.stop();
  }
}
