/**
 * The admin server: health and metrics for operators (unauthenticated, bind it to a
 * private address), and the JSON API for admins and auditors (bearer token of an
 * identity whose groups map to a role in `identity.roles`, or the session cookie of the web
 * console under /ui/ when `console` is configured: see console/). HTTPS when `admin.tls` is set;
 * with `client_auth`, no request of any kind is served without a client certificate.
 */
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerOptions, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { listenOn, PROBLEM_MEDIA_TYPE, problemBody, type Authenticator, type Connector, type GatehouseConfig, type Identity, type Logger, type TlsConfig } from '@gatehouse/core';
import type { AuditLog, EventFilter } from '@gatehouse/audit';
import { roleOf } from '@gatehouse/identity';
import type { GatewayMetrics } from './metrics.js';
import { startAuditReader } from './audit-reader.js';
import type { SharedSessionDirectory } from './session-directory.js';
import { approvalsApi, isApprovalsPath } from './approvals-api.js';
import type { ApprovalService } from '@gatehouse/approvals';
import { createConsole } from './console/index.js';
import { AdminError, problemOf } from './problems.js';
import type { WorkerView } from './cluster/pool.js';
import { AggregatorRegistry, type Registry } from 'prom-client';

export interface AdminDeps {
  config: GatehouseConfig;
  audit: AuditLog;
  authenticator: Authenticator;
  metrics: GatewayMetrics;
  logger: Logger;
  connectors: Connector[];
  /** Review requests and grants (approvals-api.ts); null when the gateway has none. */
  approvals?: ApprovalService | null;
  /** Every gateway's sessions (`approvals.store: postgres`); null when there is no shared store. */
  directory?: SharedSessionDirectory | null;
  /**
   * Connection workers (`workers:` above 1): /healthz reports each, /metrics sums their
   * registries with this process's at scrape time. Then `connectors` is empty here.
   */
  workers?: WorkerView | null;
}

type Role = ReturnType<typeof roleOf>[number];

const SESSION_PATH = /^\/api\/v1\/sessions\/([0-9a-f-]{36})$/;

export interface AdminServer {
  /** Bound host:port. */
  address: string;
  /** True when served over HTTPS (`admin.tls`). */
  tls: boolean;
  close(): Promise<void>;
}

export async function startAdminServer(deps: AdminDeps): Promise<AdminServer> {
  const { config, audit, metrics, logger } = deps;
  // Read the key material before anything starts: a bad path fails the start, not a request.
  const tlsOptions = config.admin.tls ? await tlsServerOptions(config.admin.tls) : null;
  const reader = startAuditReader(config.data_dir);
  let webConsole: ReturnType<typeof createConsole> | null = null;
  try {
    webConsole = config.console
      ? createConsole({ config, tls: tlsOptions !== null, reader, verifierKey: audit.verifierKey, logger: logger.child({ component: 'console' }) })
      : null;
  } catch (e) {
    await reader.close();
    throw e;
  }

  async function requireRole(req: IncomingMessage, roles: Role[]): Promise<Identity> {
    const header = req.headers.authorization;
    // No Authorization header: a console session cookie may stand in (CSRF and Origin checked on state changes).
    const cookie = header === undefined ? webConsole?.authenticate(req) : null;
    let identity: Identity;
    if (cookie) {
      if (!cookie.ok) throw new AdminError(cookie.status, cookie.message);
      identity = cookie.identity;
    } else {
      const m = /^Bearer\s+(\S+)$/i.exec(header ?? '');
      if (!m) throw new AdminError(401, 'bearer token required');
      const r = await deps.authenticator.authenticate(m[1]);
      if (!r.ok) throw new AdminError(401, r.error.message);
      identity = r.value;
    }
    const have = roleOf(identity, config.identity.roles);
    if (!have.some((x) => x === 'admin' || roles.includes(x))) throw new AdminError(403, `requires role ${roles.join(' or ')}`);
    return identity;
  }

  const approvals = approvalsApi({ service: deps.approvals ?? null, requireRole, logger });

  /** `GET /api/v1/sessions?scope=deployment`: every gateway's sessions, from the shared directory. */
  async function deploymentSessions(q: URLSearchParams) {
    if (!deps.directory) throw new AdminError(400, 'scope=deployment needs the shared store (approvals.store: postgres)');
    const f = eventFilter(q);
    if (f.limit !== undefined && f.limit > 1000) throw new AdminError(400, 'limit must be 1..1000 with scope=deployment');
    const gateway = q.get('gateway') ?? undefined;
    return deps.directory.list({
      ...(f.since !== undefined ? { since: Date.parse(f.since) } : {}),
      ...(f.connector !== undefined ? { connector: f.connector } : {}),
      ...(f.subject !== undefined ? { subject: f.subject } : {}),
      ...(gateway !== undefined ? { gateway } : {}),
      ...(f.limit !== undefined ? { limit: f.limit } : {}),
    });
  }

  async function route(req: IncomingMessage, url: URL): Promise<unknown> {
    if (req.method !== 'GET') throw new AdminError(405, 'method not allowed');
    const p = url.pathname;
    if (p === '/api/v1/events') {
      await requireRole(req, ['auditor']);
      return { events: await reader.events(eventFilter(url.searchParams)) };
    }
    if (p === '/api/v1/checkpoint') {
      await requireRole(req, ['auditor']);
      return { checkpoint: await reader.checkpoint(), verifier_key: audit.verifierKey };
    }
    if (p === '/api/v1/sessions') {
      await requireRole(req, ['auditor']);
      if (url.searchParams.get('scope') === 'deployment') return { sessions: await deploymentSessions(url.searchParams) };
      const filter = eventFilter(url.searchParams);
      return { sessions: await reader.events({ ...filter, kind: 'session.start' }) };
    }
    const s = SESSION_PATH.exec(p);
    if (s) {
      await requireRole(req, ['auditor']);
      const [events, recording] = await Promise.all([reader.events({ session: s[1], limit: 10_000 }), reader.recording(s[1])]);
      if (events.length === 0) throw new AdminError(404, 'no such session');
      return { session: s[1], events, recording };
    }
    throw new AdminError(404, 'not found');
  }

  const handler: RequestListener = (req, res) => {
    const url = new URL(req.url ?? '/', 'http://admin');
    const fail = (e: unknown) => {
      const known = e instanceof AdminError;
      if (!known) logger.error({ err: (e as Error).message, path: url.pathname }, 'admin API error');
      const p = known ? problemOf(e.status, e.message) : problemOf(500, 'the request failed; see the gateway log');
      if (res.headersSent) return void res.destroy();
      sendText(res, p.status, problemBody(p), PROBLEM_MEDIA_TYPE);
    };
    if (url.pathname === '/healthz') return void health(res).catch(fail);
    if (url.pathname === '/metrics') return void sendMetrics(res).catch(fail);
    if (webConsole && (url.pathname === '/ui' || url.pathname.startsWith('/ui/'))) return void webConsole.handle(req, res, url, requireRole).catch(fail);
    if (isApprovalsPath(url.pathname)) return void approvals(req, res, url).catch(fail);
    route(req, url).then((body) => send(res, 200, body), fail);
  };
  const options: ServerOptions = { requestTimeout: 15_000, headersTimeout: 10_000, maxHeaderSize: 16 * 1024 };

  async function health(res: ServerResponse) {
    const failure = audit.failure;
    let connectors = Object.fromEntries(deps.connectors.map((c) => [c.name, { type: c.type, connections: c.connections }]));
    let workers: Awaited<ReturnType<WorkerView['report']>> | null = null;
    if (deps.workers) {
      workers = await deps.workers.report();
      const open = (name: string) => workers!.reduce((n, w) => n + (w.report?.connections[name] ?? 0), 0);
      connectors = Object.fromEntries(config.connectors.map((c) => [c.name, { type: c.type, connections: open(c.name) }]));
    }
    // A worker that does not answer, or refuses work, is a failing gateway for its callers.
    const workerDown = workers?.some((w) => w.report === null || w.report.failure !== null) ?? false;
    send(res, failure || workerDown ? 503 : 200, {
      status: failure || workerDown ? 'failing' : 'ok',
      audit: failure ? { status: 'failing', error: failure.message } : { status: 'ok', durability: audit.durability },
      connectors,
      ...(workers
        ? {
            workers: workers.map((w) => ({
              index: w.index,
              pid: w.pid,
              status: w.report === null ? 'unreachable' : w.report.failure !== null ? 'failing' : 'ok',
              ...(w.report ? { connections: w.report.connections } : {}),
              ...(w.error ? { error: w.error } : w.report?.failure ? { error: w.report.failure } : {}),
            })),
          }
        : {}),
    });
  }

  /** With workers, every worker's registry is summed with this one's; a worker that does not answer fails the scrape (a partial sum would look like counters going back). */
  async function sendMetrics(res: ServerResponse) {
    let registry: Registry = metrics.registry;
    if (deps.workers) {
      const all = await deps.workers.metrics().catch((e: Error) => {
        throw new AdminError(503, `metrics incomplete: ${e.message}`);
      });
      registry = AggregatorRegistry.aggregate([await metrics.registry.getMetricsAsJSON(), ...all]);
    }
    const body = await registry.metrics();
    res.writeHead(200, { 'content-type': registry.contentType });
    res.end(body);
  }

  let server: Server;
  let address: string;
  try {
    server = tlsOptions ? httpsServer(options, tlsOptions, handler) : createServer(options, handler);
    address = await listenOn(server, config.admin.listen);
  } catch (e) {
    await reader.close();
    throw e;
  }
  return {
    address,
    tls: tlsOptions !== null,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await reader.close();
    },
  };
}

/**
 * HTTPS options of `admin.tls` (the loader has checked cert+key and ca+client_auth come in
 * pairs). With client_auth the handshake itself refuses a caller without a certificate
 * signed by `ca` — health and metrics included; API roles still come from the bearer token.
 */
async function tlsServerOptions(tls: TlsConfig) {
  const read = async (what: string, file: string) => {
    try {
      return await readFile(file);
    } catch (e) {
      throw new Error(`admin.tls.${what}: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, { cause: e });
    }
  };
  const clientAuth = tls.client_auth === true;
  return {
    cert: await read('cert', tls.cert!),
    key: await read('key', tls.key!),
    ...(clientAuth ? { ca: await read('ca', tls.ca!) } : {}),
    requestCert: clientAuth,
    rejectUnauthorized: clientAuth,
    minVersion: 'TLSv1.2' as const,
  };
}

/** Node checks the PEM files (and that the key matches the certificate) here: say which key. */
function httpsServer(options: ServerOptions, tls: Awaited<ReturnType<typeof tlsServerOptions>>, handler: RequestListener): Server {
  try {
    return createHttpsServer({ ...options, ...tls }, handler);
  } catch (e) {
    throw new Error(`admin.tls: ${(e as Error).message}`, { cause: e });
  }
}

function eventFilter(q: URLSearchParams): EventFilter {
  const f: EventFilter = {};
  const str = (k: string) => q.get(k) ?? undefined;
  f.since = str('since');
  f.until = str('until');
  f.connector = str('connector');
  f.session = str('session');
  f.subject = str('subject');
  f.kind = str('kind');
  const after = q.get('after');
  if (after !== null) {
    if (!/^\d+$/.test(after)) throw new AdminError(400, 'after must be a sequence number');
    f.sinceSeq = Number(after) + 1;
  }
  const limit = q.get('limit');
  if (limit !== null) {
    if (!/^\d+$/.test(limit) || Number(limit) < 1 || Number(limit) > 10_000) throw new AdminError(400, 'limit must be 1..10000');
    f.limit = Number(limit);
  }
  for (const k of ['since', 'until'] as const) {
    if (f[k] !== undefined && Number.isNaN(Date.parse(f[k]))) throw new AdminError(400, `${k} must be an RFC 3339 time`);
  }
  return f;
}

function send(res: ServerResponse, status: number, body: unknown) {
  sendText(res, status, JSON.stringify(body), 'application/json');
}

function sendText(res: ServerResponse, status: number, text: string, type: string) {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}
