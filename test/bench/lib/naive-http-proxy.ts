/**
 * The naive Node HTTP proxy issue #9 measures against: node:http in front, an undici Pool
 * behind, no controls at all. Run as its own process: node naive-http-proxy.js UPSTREAM PORT.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { Pool } from 'undici';

const [upstream, port] = process.argv.slice(2);
const pool = new Pool(upstream, { connections: 128 });
// Hop-by-hop headers belong to one connection (and undici refuses some of them).
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'host']);

function forward(h: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined && !HOP.has(k)) out[k] = v;
  return out;
}

createServer((req, res) => {
  const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
  pool
    .request({ path: req.url ?? '/', method: req.method ?? 'GET', headers: forward(req.headers), body: hasBody ? req : null })
    .then(async (r) => {
      res.writeHead(r.statusCode, forward(r.headers));
      await pipeline(r.body, res);
    })
    .catch(() => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
}).listen(Number(port), '127.0.0.1');
