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
import { connectorsYaml, connectorYaml, startTestGateway, TOKENS, type TestGateway } from '../../lib/gateway.js';
import { startNginx } from '../../e2e/http/nginx.js';
import { wrk as runWrk } from '../lib/wrk.js';
import { startNginxProxy } from './suite.js';

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

async function wrk(name: string, url: string, headers: string[] = []): Promise<Result> {
  // Short warm-up (JIT, pools), then the measured run.
  await runWrk(url, { connections: CONNECTIONS, seconds: 2, headers });
  const r = await runWrk(url, { connections: CONNECTIONS, seconds: DURATION, headers });
  return { name, rps: r.rate, p50ms: r.latency.p50, p99ms: r.latency.p99, errors: r.errors };
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

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
