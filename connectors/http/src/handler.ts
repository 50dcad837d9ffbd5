/**
 * The per-request path: authenticate, normalise the target, decide, then hand the request
 * to an Exchange for forwarding. Refusals are audited before the caller sees them. Each stage
 * runs synchronously when the one before it did not have to wait (./maybe.ts explains why).
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import type { ConnectorContext, Decision, Result, Session, Unit } from '@gatehouse/core';
import type { HttpConnectorConfig } from './config.js';
import { auditHeaders, upstreamRequestHeaders, type DropSets } from './headers.js';
import { authenticateCaller, credentialRequired, type CallerConnection } from './caller.js';
import { buildUnit, type UnitPlan } from './unit.js';
import { collectBody, parseJsonOrNull } from './body.js';
import { judgedTarget, judgeUnit, type Judged } from './judge.js';
import { auditPath, auditUnit, bodySample } from './audit-view.js';
import { maskUrlText } from './detect-text.js';
import { withCredentialQuery, type UpstreamAuth } from './credential.js';
import { auditProblem, Exchange, type AuditExtras, type ExchangeSettings } from './exchange.js';
import { sendProblem, unauthorized, WWW_AUTH_INVALID, type Problem } from './problem.js';
import { then, type Maybe } from '@gatehouse/connector-kit';

type JudgedOk = Extract<Judged, { ok: true }>;

export interface HandlerDeps {
  ctx: ConnectorContext<HttpConnectorConfig>;
  settings: ExchangeSettings;
  plan: UnitPlan;
  auth: UpstreamAuth;
  upstream: Dispatcher;
  /** Path prefix of `upstream.url` without trailing slash ('' for none). */
  basePath: string;
  proto: 'http' | 'https';
  track: (p: Promise<void>) => void;
  /** `method_override: strip` removes overrides; `judge` judges the request as their method too. */
  stripMethodOverride: boolean;
  /** Request headers removed by caller kind (method overrides when stripped, Range for masked callers). */
  drop: DropSets;
}

/** One request as it moves through the stages below. */
interface Incoming {
  d: HandlerDeps;
  conn: CallerConnection;
  req: IncomingMessage;
  res: ServerResponse;
  startedAt: number;
}

/**
 * Handles one request. Returns nothing when it ran to the hand-off synchronously (the usual
 * keep-alive request of an authenticated caller that no rule holds), a promise when some
 * stage had to wait (first authentication, a buffered body, a review, a strict audit write).
 * A stage that throws, synchronously or not, is the caller's 500 (connector.ts).
 */
export function handleRequest(d: HandlerDeps, conn: CallerConnection, req: IncomingMessage, res: ServerResponse): Maybe<void> {
  const r: Incoming = { d, conn, req, res, startedAt: Date.now() };
  return then(authenticateCaller(d, conn, req, false), (authed) => authenticated(r, authed));
}

function authenticated(r: Incoming, authed: Result<Session> | null): Maybe<void> {
  const { res, conn } = r;
  if (authed === null) {
    sendProblem(res, unauthorized(credentialRequired(conn)), { 'www-authenticate': WWW_AUTH_INVALID }, true);
    return;
  }
  if (!authed.ok) {
    const p = authed.error.code === 'audit.unavailable' ? auditProblem() : unauthorized(authed.error.message);
    sendProblem(res, p, p.status === 401 ? { 'www-authenticate': WWW_AUTH_INVALID } : undefined, true);
    return;
  }
  const session = authed.value;
  const { d, req } = r;
  const judged = judgedTarget(req, d.stripMethodOverride);
  if (!judged.ok) return badTarget(r, session, judged.detail);
  const headers = req.headers;
  const hasBody = headers['transfer-encoding'] !== undefined || (headers['content-length'] !== undefined && headers['content-length'] !== '0');
  const contentLength = headers['content-length'] === undefined ? -1 : Number(headers['content-length']);
  // Buffer the body when a CEL rule may read `request.json`, when an approval must bind it
  // (a `review` block), or when it is small enough to keep in the audit anyway; otherwise it
  // streams through untouched.
  if (hasBody && (d.plan.needsContext || d.ctx.config.review !== undefined || (contentLength >= 0 && contentLength <= d.settings.auditBodyBytes))) {
    return buffered(r, session, judged, contentLength);
  }
  return decided(r, session, judged, hasBody, null, null);
}

async function badTarget(r: Incoming, session: Session, detail: string): Promise<void> {
  await session.protocolError(detail, { method: r.req.method });
  sendProblem(r.res, { code: 'bad-request', status: 400, title: 'Bad Request', detail }, undefined, true);
}

async function buffered(r: Incoming, session: Session, judged: JudgedOk, contentLength: number): Promise<void> {
  const { d, req, res } = r;
  const got = await collectBody(req, d.ctx.config.max_body_bytes, contentLength);
  if (!got.ok) {
    if (got.reason === 'aborted') {
      res.destroy();
      return;
    }
    const detail = `request body exceeds max_body_bytes (${d.ctx.config.max_body_bytes})`;
    await session.protocolError(detail, { method: req.method ?? 'GET', path: auditPath(judged.target.path, session.masker) });
    // The unread rest of the body cannot be skipped safely: close after answering.
    sendProblem(res, { code: 'body-too-large', status: 413, title: 'Content Too Large', detail }, undefined, true);
    return;
  }
  await decided(r, session, judged, true, got.body, d.plan.needsContext ? parseJsonOrNull(got.body) : null);
}

/** Policy (and review) for the request, then the refusal or the forwarding. */
function decided(r: Incoming, session: Session, judged: JudgedOk, hasBody: boolean, body: Buffer | null, json: unknown): Maybe<void> {
  const { d, req } = r;
  const unit = buildUnit(req, req.method ?? 'GET', judged.target, d.plan, json);
  if (judged.override !== null) unit.match.method_override = judged.override;
  const review = body !== null && d.ctx.config.review !== undefined ? { paramsHash: createHash('sha256').update(body).digest('hex') } : undefined;
  return then(judgeUnit(session, unit, judged.override, review), (decision) => settled(r, session, judged, unit, decision, hasBody, body, json));
}

function settled(r: Incoming, session: Session, judged: JudgedOk, unit: Unit, decision: Decision, hasBody: boolean, body: Buffer | null, json: unknown): Maybe<void> {
  const { d, conn, req, res } = r;
  const masker = session.masker;
  const audited = auditUnit(unit, masker);
  const extras: AuditExtras = { headers: auditHeaders(req.rawHeaders, masker.active ? (v) => maskUrlText(masker, v) : null) };
  if (body !== null && d.settings.auditBodyBytes > 0) extras.body = bodySample(body, json, masker, d.settings.auditBodyBytes);
  if (decision.action !== 'allow') return refused(r, session, audited, decision, extras, hasBody && body === null);

  const target = judged.target;
  const method = req.method ?? 'GET';
  const query = withCredentialQuery(target.query, d.auth.query);
  const path = d.basePath + target.wirePath + (query ? `?${query}` : '');
  const fwd = { clientIp: conn.peer.address, proto: d.proto, host: req.headers.host };
  const headers = upstreamRequestHeaders(req.rawHeaders, req.headers.connection, fwd, d.auth.headers, body !== null, masker.active ? d.drop.masked : d.drop.plain);
  const ex = new Exchange(d.settings, req, res, session, audited, decision, r.startedAt, extras, hasBody && body === null);
  let upstreamBody: Dispatcher.DispatchOptions['body'] = null;
  if (body !== null) {
    headers.push('content-length', String(body.length));
    upstreamBody = body;
    ex.requestBytes = body.length;
  } else if (hasBody) upstreamBody = ex.relayRequestBody(req);
  d.upstream.dispatch({ path, method, headers, body: upstreamBody, idempotent: method === 'GET' || method === 'HEAD' }, ex);
}

/** A refused request: audited first; the caller gets the refusal only once the event is as durable as promised. */
function refused(r: Incoming, session: Session, audited: Unit, decision: Decision, extras: AuditExtras, unreadBody: boolean): Maybe<void> {
  const p = refusal(decision);
  const attributes: Record<string, unknown> = { headers: extras.headers, upstream: r.d.settings.upstream };
  if (extras.body !== undefined) attributes.body = extras.body;
  const recorded = session.record({ unit: audited, decision, startedAt: r.startedAt, result: { status: p.status, bytes: 0, error: p.detail }, attributes });
  return then(recorded, (written: Result<void>) => sendProblem(r.res, written.ok ? p : auditProblem(), undefined, unreadBody));
}

function refusal(decision: Decision): Problem {
  const rule = decision.rule ?? 'policy';
  return {
    code: decision.rule === 'audit-unavailable' ? 'audit-unavailable' : 'policy-denied',
    status: decision.rule === 'audit-unavailable' ? 503 : 403,
    title: decision.rule === 'audit-unavailable' ? 'Service Unavailable' : 'Forbidden',
    detail: decision.reason ?? `request denied by rule "${rule}"`,
    rule,
  };
}
