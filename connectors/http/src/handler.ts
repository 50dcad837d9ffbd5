/**
 * The per-request path: authenticate, normalise the target, decide, then hand the request
 * to an Exchange for forwarding. Refusals are audited before the caller sees them.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import type { ConnectorContext, Decision, HttpConnectorConfig, Session, Unit } from '@gatehouse/core';
import { auditHeaders, upstreamRequestHeaders } from './headers.js';
import { authenticateCaller, credentialRequired, type CallerConnection } from './caller.js';
import { parseTarget } from './path.js';
import { buildUnit, type UnitPlan } from './unit.js';
import { collectBody, parseJsonOrNull } from './body.js';
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

  const target = parseTarget(req.url);
  if (!target.ok) {
    await session.protocolError(target.error.message, { method: req.method });
    sendProblem(res, { code: 'bad-request', status: 400, title: 'Bad Request', detail: target.error.message }, undefined, true);
    return;
  }
  const method = req.method ?? 'GET';
  const hasBody = req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');
  const contentLength = req.headers['content-length'] === undefined ? -1 : Number(req.headers['content-length']);

  // Buffer the body when a CEL rule may read `request.json`, or when it is small enough to
  // keep in the audit anyway; otherwise it streams through untouched.
  let body: Buffer | null = null;
  let json: unknown = null;
  if (hasBody && (d.plan.needsContext || (contentLength >= 0 && contentLength <= d.settings.auditBodyBytes))) {
    const got = await collectBody(req, d.ctx.config.max_body_bytes, contentLength);
    if (!got.ok) {
      if (got.reason === 'aborted') {
        res.destroy();
        return;
      }
      const detail = `request body exceeds max_body_bytes (${d.ctx.config.max_body_bytes})`;
      await session.protocolError(detail, { method, path: target.value.path });
      // The unread rest of the body cannot be skipped safely: close after answering.
      sendProblem(res, { code: 'body-too-large', status: 413, title: 'Content Too Large', detail }, undefined, true);
      return;
    }
    body = got.body;
    if (d.plan.needsContext) json = parseJsonOrNull(body);
  }

  const unit = buildUnit(req, method, target.value, d.plan, json);
  let decision = session.decide(unit);
  if (decision.action === 'review') decision = await session.review(unit, decision);
  const audited = maskedUnit(unit, session);
  const extras: AuditExtras = { headers: auditHeaders(req.rawHeaders, session.masker.active ? (v) => session.masker.maskText(v) : null) };
  if (body !== null && d.settings.auditBodyBytes > 0) extras.body = bodySample(body, json, session, d.settings.auditBodyBytes);

  if (decision.action !== 'allow') {
    const p = refusal(decision);
    const r = await session.record({ unit: audited, decision, startedAt, result: { status: p.status, bytes: 0, error: p.detail }, attributes: { headers: extras.headers, upstream: d.settings.upstream, ...(extras.body !== undefined ? { body: extras.body } : {}) } });
    sendProblem(res, r.ok ? p : auditProblem(), undefined, hasBody && body === null);
    return;
  }

  const query = withCredentialQuery(target.value.query, d.auth.query);
  const path = d.basePath + target.value.wirePath + (query ? `?${query}` : '');
  const fwd = { clientIp: conn.peer.address, proto: d.proto, host: req.headers.host };
  const headers = upstreamRequestHeaders(req.rawHeaders, req.headers.connection, fwd, d.auth.headers, body !== null);
  const ex = new Exchange(d.settings, req, res, session, audited, decision, startedAt, extras, hasBody && body === null);
  const opts: Dispatcher.DispatchOptions = {
    path,
    method: method as Dispatcher.HttpMethod,
    headers,
    body: body ?? (hasBody ? req : null),
    idempotent: method === 'GET' || method === 'HEAD',
  };
  if (body !== null) headers.push('content-length', String(body.length));
  d.upstream.dispatch(opts, ex as unknown as Dispatcher.DispatchHandler);
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

/** The unit as it goes to the audit: query values may carry personal data, so detectors run over them. */
function maskedUnit(unit: Unit, session: Session): Unit {
  const q = unit.match.query;
  if (!session.masker.active || !q) return unit;
  const mq = session.masker.maskText(q as string);
  if (mq === q) return unit;
  return { ...unit, text: session.masker.maskText(unit.text), match: { ...unit.match, query: mq } };
}

function bodySample(body: Buffer, json: unknown, session: Session, cap: number): string {
  const m = session.masker;
  const parsed = json ?? (m.active ? parseJsonOrNull(body) : null);
  let text: string;
  if (parsed !== null && m.active) text = JSON.stringify(m.maskJson(parsed).value);
  else {
    // Cut before masking: detectors then see at most `cap` bytes, never the whole body.
    text = (body.length > cap ? body.subarray(0, cap) : body).toString('utf8');
    if (m.active) text = m.maskText(text);
  }
  return text.length > cap ? text.slice(0, cap) : text;
}
