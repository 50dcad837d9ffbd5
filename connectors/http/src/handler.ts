/**
 * The per-request path: authenticate, normalise the target, decide, then hand the request
 * to an Exchange for forwarding. Refusals are audited before the caller sees them.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import type { ConnectorContext, Decision } from '@gatehouse/core';
import type { HttpConnectorConfig } from './config.js';
import { auditHeaders, upstreamRequestHeaders, type DropSets } from './headers.js';
import { authenticateCaller, credentialRequired, type CallerConnection } from './caller.js';
import { buildUnit, type UnitPlan } from './unit.js';
import { collectBody, parseJsonOrNull } from './body.js';
import { judgedTarget, judgeUnit } from './judge.js';
import { auditPath, auditUnit, bodySample } from './audit-view.js';
import { maskUrlText } from './detect-text.js';
import { withCredentialQuery, type UpstreamAuth } from './credential.js';
import { auditProblem, Exchange, type AuditExtras, type ExchangeSettings } from './exchange.js';
import { sendProblem, unauthorized, WWW_AUTH_INVALID, type Problem } from './problem.js';

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

export async function handleRequest(d: HandlerDeps, conn: CallerConnection, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const startedAt = Date.now();
  const authed = await authenticateCaller(d, conn, req, false);
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

  const judged = judgedTarget(req, d.stripMethodOverride);
  if (!judged.ok) {
    await session.protocolError(judged.detail, { method: req.method });
    sendProblem(res, { code: 'bad-request', status: 400, title: 'Bad Request', detail: judged.detail }, undefined, true);
    return;
  }
  const target = judged.target;
  const masker = session.masker;
  const method = req.method ?? 'GET';
  const hasBody = req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');
  const contentLength = req.headers['content-length'] === undefined ? -1 : Number(req.headers['content-length']);

  // Buffer the body when a CEL rule may read `request.json`, when an approval must bind it
  // (a `review` block), or when it is small enough to keep in the audit anyway; otherwise it
  // streams through untouched.
  let body: Buffer | null = null;
  let json: unknown = null;
  const reviewed = d.ctx.config.review !== undefined;
  if (hasBody && (d.plan.needsContext || reviewed || (contentLength >= 0 && contentLength <= d.settings.auditBodyBytes))) {
    const got = await collectBody(req, d.ctx.config.max_body_bytes, contentLength);
    if (!got.ok) {
      if (got.reason === 'aborted') {
        res.destroy();
        return;
      }
      const detail = `request body exceeds max_body_bytes (${d.ctx.config.max_body_bytes})`;
      await session.protocolError(detail, { method, path: auditPath(target.path, masker) });
      // The unread rest of the body cannot be skipped safely: close after answering.
      sendProblem(res, { code: 'body-too-large', status: 413, title: 'Content Too Large', detail }, undefined, true);
      return;
    }
    body = got.body;
    if (d.plan.needsContext) json = parseJsonOrNull(body);
  }

  const unit = buildUnit(req, method, target, d.plan, json);
  if (judged.override !== null) unit.match.method_override = judged.override;
  const decision = await judgeUnit(session, unit, judged.override, body !== null && reviewed ? { paramsHash: createHash('sha256').update(body).digest('hex') } : {});
  const audited = auditUnit(unit, masker);
  const extras: AuditExtras = { headers: auditHeaders(req.rawHeaders, masker.active ? (v) => maskUrlText(masker, v) : null) };
  if (body !== null && d.settings.auditBodyBytes > 0) extras.body = bodySample(body, json, masker, d.settings.auditBodyBytes);

  if (decision.action !== 'allow') {
    const p = refusal(decision);
    const r = await session.record({
      unit: audited,
      decision,
      startedAt,
      result: { status: p.status, bytes: 0, error: p.detail },
      attributes: { headers: extras.headers, upstream: d.settings.upstream, ...(extras.body !== undefined ? { body: extras.body } : {}) },
    });
    sendProblem(res, r.ok ? p : auditProblem(), undefined, hasBody && body === null);
    return;
  }

  const query = withCredentialQuery(target.query, d.auth.query);
  const path = d.basePath + target.wirePath + (query ? `?${query}` : '');
  const fwd = { clientIp: conn.peer.address, proto: d.proto, host: req.headers.host };
  const headers = upstreamRequestHeaders(req.rawHeaders, req.headers.connection, fwd, d.auth.headers, body !== null, masker.active ? d.drop.masked : d.drop.plain);
  const ex = new Exchange(d.settings, req, res, session, audited, decision, startedAt, extras, hasBody && body === null);
  let upstreamBody: Dispatcher.DispatchOptions['body'] = null;
  if (body !== null) {
    headers.push('content-length', String(body.length));
    upstreamBody = body;
    ex.requestBytes = body.length;
  } else if (hasBody) upstreamBody = ex.relayRequestBody(req);
  d.upstream.dispatch({ path, method, headers, body: upstreamBody, idempotent: method === 'GET' || method === 'HEAD' }, ex);
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
