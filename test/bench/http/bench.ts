/**
 * HTTP connector benchmark (not part of `make test`): wrk, 64 connections, small JSON
 * responses, in one run: direct to the upstream, nginx as a plain reverse proxy, and
 * Gatehouse (strict audit; optionally with JSON masking). Prints a JSON summary and a table.
 *
 *   npx tsc -b test && node test/dist/bench/http/bench.js [--duration 10] [--connections 64] [--only name,name]
 *
 * The upstream is nginx (1 worker) returning a fixed JSON body; the reference proxy is nginx
 * (1 worker, upstream keep-alive) so that it has the same single core as the Node gateway.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { connectorsYaml, connectorYaml, startTestGateway, TOKENS, type TestGateway } from '../../lib/gateway.js';
import { startNginx, type Nginx } from '../../e2e/http/nginx.js';

const run = promisify(execFile);

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1] : dflt;
}
const DURATION = Number(arg('duration', '10'));
const CONNECTIONS = Number(arg('connections', '64'));
const ONLY = arg('only', '').split(',').filter(Boolean);

interface Result {
  name: string;
  rps: number;
  p50ms: number;
  p99ms: number;
  errors: number;
}

function toMs(v: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(v.trim());
  if (!m) return NaN;
  const n = Number(m[1]);
  return m[2] === 'us' ? n / 1000 : m[2] === 's' ? n * 1000 : n;
}

async function wrk(name: string, url: string, headers: string[] = []): Promise<Result> {
  const h = headers.flatMap((x) => ['-H', x]);
  // Short warm-up (JIT, pools), then the measured run.
  await run('wrk', ['-t2', `-c${CONNECTIONS}`, '-d2s', ...h, url]);
  const { stdout } = await run('wrk', ['-t2', `-c${CONNECTIONS}`, `-d${DURATION}s`, '--latency', ...h, url], { maxBuffer: 1 << 20 });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1]);
  const p50 = toMs(/^\s+50%\s+(\S+)/m.exec(stdout)?.[1] ?? '');
  const p99 = toMs(/^\s+99%\s+(\S+)/m.exec(stdout)?.[1] ?? '');
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(stdout)?.[1] ?? 0);
  const sockErr = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
  const errors =
    non2xx +
    (sockErr
      ? sockErr
          .slice(1)
          .map(Number)
          .reduce((a, b) => a + b, 0)
      : 0);
  return { name, rps, p50ms: p50, p99ms: p99, errors };
}

async function main(): Promise<void> {
  const body = JSON.stringify({ id: 123, name: 'Ada', plan: 'pro', card: { last4: '1111' }, active: true });
  const upstream = await startNginx(`location / { default_type application/json; return 200 '${body}'; }`);
  const nginxProxy = await startNginxProxy(upstream.port);
  const gateways: { name: string; tg: TestGateway }[] = [];
  const mk = async (name: string, masking: string[], durability = 'strict') => {
    const api = connectorYaml({
      type: 'http',
      name: 'api',
      upstream: `{ url: ${upstream.url}, headers: { Authorization: "Bearer upstream-key-0123456789" } }`,
      rules: ['{ name: no-delete, match: { method: [DELETE] }, action: deny }'],
      masking,
    });
    const tg = await startTestGateway({ yaml: connectorsYaml([api], `{ durability: ${durability} }`) });
    gateways.push({ name, tg });
    return `${tg.url('api')}/v1/customers/7`;
  };
  const results: Result[] = [];
  const want = (n: string) => ONLY.length === 0 || ONLY.includes(n);
  try {
    if (want('direct')) results.push(await wrk('direct', `${upstream.url}/v1/customers/7`));
    if (want('nginx-proxy')) results.push(await wrk('nginx-proxy', `${nginxProxy.url}/v1/customers/7`));
    const auth = [`Authorization: Bearer ${TOKENS.billing}`];
    if (want('gatehouse')) results.push(await wrk('gatehouse', await mk('gatehouse', []), auth));
    // Batched durability separates the connector's own cost from the fsync wait of strict mode.
    if (want('gatehouse-batched')) results.push(await wrk('gatehouse-batched', await mk('gatehouse-batched', [], 'batched'), auth));
    if (want('gatehouse-masking')) {
      const url = await mk('gatehouse-masking', ['{ json: ["$.card.last4"], with: redact }', '{ detectors: [email], with: redact }']);
      results.push(await wrk('gatehouse-masking', url, auth));
    }
  } finally {
    for (const g of gateways) await g.tg.stop();
    await nginxProxy.stop();
    await upstream.stop();
  }
  const direct = results.find((r) => r.name === 'direct');
  const summary = results.map((r) => ({
    ...r,
    ratioVsDirect: direct ? Number((r.rps / direct.rps).toFixed(3)) : null,
    p99AddedMs: direct ? Number((r.p99ms - direct.p99ms).toFixed(3)) : null,
  }));
  console.log(JSON.stringify({ bench: 'http', connections: CONNECTIONS, durationSec: DURATION, results: summary }, null, 2));
  console.log('\n| target | RPS | vs direct | p50 ms | p99 ms | errors |\n|---|---:|---:|---:|---:|---:|');
  for (const r of summary) {
    console.log(`| ${r.name} | ${r.rps.toFixed(0)} | ${r.ratioVsDirect ?? '-'} | ${r.p50ms.toFixed(2)} | ${r.p99ms.toFixed(2)} | ${r.errors} |`);
  }
}

/** nginx as a plain keep-alive reverse proxy (the `upstream` block must sit at http level). */
async function startNginxProxy(upstreamPort: number): Promise<Nginx> {
  return startNginx(
    'location / { proxy_pass http://bench_up; proxy_http_version 1.1; proxy_set_header Connection ""; }',
    {},
    1,
    `upstream bench_up { server 127.0.0.1:${upstreamPort}; keepalive 128; }`,
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
