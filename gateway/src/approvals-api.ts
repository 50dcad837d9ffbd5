/**
 * The approvals routes of the admin API (docs/approvals.md):
 *
 *   GET  /api/v1/approvals?status=pending|approved|denied|expired|cancelled|used|all
 *   GET  /api/v1/approvals/events          text/event-stream, `approval` on every change
 *   GET  /api/v1/approvals/{id}
 *   POST /api/v1/approvals/{id}/approve    {"reason": "…"}
 *   POST /api/v1/approvals/{id}/deny       {"reason": "…"}
 *   GET  /api/v1/grants
 *   POST /api/v1/grants                    {"subject", "connector", "minutes", "reason"}
 *
 * Reading needs role reviewer, auditor or admin; a verdict or a grant needs role reviewer or
 * admin AND a match of the connector's `review.reviewers` (checked by the service, which also
 * refuses self-approval). Errors are problem details, as everywhere in the admin API.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Identity, Logger } from '@gatehouse/core';
import { AdminError, type AdminStatus } from './problems.js';
import { STATUSES, type ApprovalService, type ApprovalStatus } from '@gatehouse/approvals';

type Role = 'admin' | 'reviewer' | 'auditor';

export interface ApprovalsApiDeps {
  /** Null when this gateway has no approvals (no review block, no shared store). */
  service: ApprovalService | null;
  /** admin.ts's: resolves the caller with one of the roles, or throws its own 401/403. */
  requireRole: (req: IncomingMessage, roles: Role[]) => Promise<Identity>;
  logger: Logger;
}

const STATUS_OF: Record<string, AdminStatus> = {
  'approval.bad_request': 400,
  'approval.forbidden': 403,
  'approval.self': 403,
  'approval.not_found': 404,
  'approval.not_pending': 409,
};

const ID = '([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})';
const ONE = new RegExp(`^/api/v1/approvals/${ID}$`);
const VERDICT = new RegExp(`^/api/v1/approvals/${ID}/(approve|deny)$`);
const READERS: Role[] = ['reviewer', 'auditor', 'admin'];
const REVIEWERS: Role[] = ['reviewer', 'admin'];
const MAX_BODY = 16 * 1024;
const HEARTBEAT_MS = 15_000;
/** How often an open event stream's credential is checked again. */
const RECHECK_MS = 5_000;
/** Open event streams per gateway, and bytes one slow reader may have queued before it is dropped. */
const MAX_STREAMS = 100;
const MAX_STREAM_BACKLOG = 1024 * 1024;

export function isApprovalsPath(p: string): boolean {
  return p === '/api/v1/approvals' || p.startsWith('/api/v1/approvals/') || p === '/api/v1/grants';
}

export function approvalsApi(deps: ApprovalsApiDeps) {
  let streams = 0;

  async function route(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const p = url.pathname;
    const method = req.method ?? 'GET';
    const svc = deps.service;
    if (p === '/api/v1/approvals') {
      allow(method, 'GET');
      await deps.requireRole(req, READERS);
      const status = url.searchParams.get('status') ?? 'pending';
      if (status !== 'all' && !STATUSES.includes(status as ApprovalStatus)) throw new AdminError(400, `status must be one of ${[...STATUSES, 'all'].join(', ')}`);
      return send(res, 200, { approvals: svc ? await svc.list(status as ApprovalStatus | 'all') : [] });
    }
    if (p === '/api/v1/approvals/events') {
      allow(method, 'GET');
      await deps.requireRole(req, READERS);
      return events(req, res);
    }
    const one = ONE.exec(p);
    if (one) {
      allow(method, 'GET');
      await deps.requireRole(req, READERS);
      const a = svc ? await svc.get(one[1]) : null;
      if (!a) throw new AdminError(404, `no approval request ${one[1]}`);
      return send(res, 200, a);
    }
    const v = VERDICT.exec(p);
    if (v) {
      allow(method, 'POST');
      const who = await deps.requireRole(req, REVIEWERS);
      const body = await readJson(req);
      if (!svc) throw new AdminError(404, `no approval request ${v[1]}`);
      const r = v[2] === 'approve' ? await svc.approve(v[1], who, body.reason) : await svc.deny(v[1], who, body.reason);
      if (!r.ok) throw new AdminError(STATUS_OF[r.error.code] ?? 400, r.error.message);
      return send(res, 200, r.value);
    }
    if (p === '/api/v1/grants') {
      if (method === 'GET') {
        await deps.requireRole(req, READERS);
        return send(res, 200, { grants: svc ? await svc.grants() : [] });
      }
      allow(method, 'POST');
      const who = await deps.requireRole(req, REVIEWERS);
      const body = await readJson(req);
      if (!svc) throw new AdminError(404, 'approvals are not enabled on this gateway');
      const r = await svc.grant(who, body);
      if (!r.ok) throw new AdminError(STATUS_OF[r.error.code] ?? 400, r.error.message);
      return send(res, 200, r.value);
    }
    throw new AdminError(404, 'not found');
  }

  /** Server-sent events: one `approval` event per change, a comment every 15 s so proxies keep it open. */
  function events(req: IncomingMessage, res: ServerResponse): void {
    if (streams >= MAX_STREAMS) throw new AdminError(503, 'too many open event streams');
    streams++;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
    res.write('retry: 3000\n\n');
    const write = (s: string) => {
      // A reader that does not keep up is dropped rather than buffered without bound.
      if (res.writableLength > MAX_STREAM_BACKLOG) return void res.destroy();
      res.write(s);
    };
    const unsubscribe = deps.service?.subscribe((a) => write(`event: approval\nid: ${a.id}\ndata: ${JSON.stringify(a)}\n\n`)) ?? (() => {});
    const beat = setInterval(() => write(': heartbeat\n\n'), HEARTBEAT_MS);
    beat.unref();
    // The credential was checked when the stream opened; it must still hold while it stays
    // open (a console sign-out or expiry, an expired token): re-checked every few seconds.
    const recheck = setInterval(() => {
      deps.requireRole(req, READERS).catch(() => res.destroy());
    }, RECHECK_MS);
    recheck.unref();
    const done = () => {
      clearInterval(beat);
      clearInterval(recheck);
      unsubscribe();
      streams--;
    };
    res.once('close', done);
    req.resume();
  }

  /** Serve one approvals request; its errors (AdminError, requireRole's) are answered by admin.ts. */
  return route;
}

function allow(method: string, want: string): void {
  if (method !== want) throw new AdminError(405, 'method not allowed');
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > MAX_BODY) throw new AdminError(413, `body larger than ${MAX_BODY} bytes`);
    chunks.push(c);
  }
  if (n === 0) return {};
  try {
    const v: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
    return v as Record<string, unknown>;
  } catch {
    throw new AdminError(400, 'body must be a JSON object');
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}
