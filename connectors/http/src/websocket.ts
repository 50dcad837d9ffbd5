/**
 * WebSocket (and any `Upgrade: websocket`) passthrough: the handshake is authenticated and
 * judged like a request, then bytes are relayed both ways with back-pressure (pipe) and the
 * whole conversation is audited as one unit when it closes, with message and byte counts.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import { auditHeaders, upstreamRequestHeaders } from './headers.js';
import { authenticateCaller, closeCaller, credentialRequired, type CallerConnection } from './caller.js';
import { parseTarget } from './path.js';
import { buildUnit } from './unit.js';
import { withCredentialQuery } from './credential.js';
import { rawProblem, unauthorized, WWW_AUTH_INVALID, type Problem } from './problem.js';
import { WsFrameCounter } from './ws-frames.js';
import type { HandlerDeps } from './handler.js';

export async function handleUpgrade(d: HandlerDeps, conn: CallerConnection, req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
  const startedAt = Date.now();
  const refuse = (p: Problem, extra = '') => {
    socket.end(rawProblem(p, extra));
  };
  socket.on('error', () => socket.destroy());
  if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') {
    refuse({ code: 'bad-request', status: 400, title: 'Bad Request', detail: 'only websocket upgrades are supported' });
    return;
  }
  const authed = await authenticateCaller(d, conn, req, true);
  if (authed === null || !authed.ok) {
    refuse(unauthorized(authed === null ? credentialRequired(conn) : authed.error.message), `www-authenticate: ${WWW_AUTH_INVALID}\r\n`);
    return;
  }
  const session = authed.value;
  const target = parseTarget(req.url);
  if (!target.ok) {
    await session.protocolError(target.error.message, { upgrade: 'websocket' });
    refuse({ code: 'bad-request', status: 400, title: 'Bad Request', detail: target.error.message });
    return;
  }
  const unit = buildUnit(req, 'GET', target.value, d.plan, null);
  unit.match.upgrade = 'websocket';
  let decision = session.decide(unit);
  if (decision.action === 'review') decision = await session.review(unit, decision);
  const headersAudit = auditHeaders(req.rawHeaders, session.masker.active ? (v) => session.masker.maskText(v) : null);
  if (decision.action !== 'allow') {
    const detail = decision.reason ?? `request denied by rule "${decision.rule}"`;
    await session.record({ unit, decision, startedAt, result: { status: 403, error: detail }, attributes: { headers: headersAudit, upstream: d.settings.upstream } });
    refuse({ code: 'policy-denied', status: 403, title: 'Forbidden', detail, rule: decision.rule });
    return;
  }

  const query = withCredentialQuery(target.value.query, d.auth.query);
  const path = d.basePath + target.value.wirePath + (query ? `?${query}` : '');
  const headers = upstreamRequestHeaders(req.rawHeaders, req.headers.connection, { clientIp: conn.peer.address, proto: d.proto, host: req.headers.host }, d.auth.headers);
  let up: Dispatcher.UpgradeData;
  try {
    up = await d.upstream.upgrade({ path, method: 'GET', headers, protocol: 'websocket' });
  } catch (e) {
    const detail = `upstream refused the upgrade (${(e as { code?: string }).code ?? (e as Error).message})`;
    await session.record({ unit, decision, startedAt, result: { status: 502, error: detail }, attributes: { headers: headersAudit, upstream: d.settings.upstream } });
    refuse({ code: 'upstream-error', status: 502, title: 'Bad Gateway', detail });
    return;
  }
  const upstream = up.socket;
  if (socket.destroyed) {
    upstream.destroy();
    return;
  }
  let reply = 'HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: websocket\r\n';
  for (const [k, v] of Object.entries(up.headers)) {
    if (k === 'connection' || k === 'upgrade' || v === undefined) continue;
    for (const one of Array.isArray(v) ? v : [v]) reply += `${k}: ${one}\r\n`;
  }
  socket.write(reply + '\r\n');

  conn.upgraded = true;
  const toUpstream = new WsFrameCounter();
  const toClient = new WsFrameCounter();
  if (head.length > 0) {
    toUpstream.feed(head);
    upstream.write(head);
  }
  socket.on('data', (c: Buffer) => toUpstream.feed(c));
  upstream.on('data', (c: Buffer) => toClient.feed(c));
  socket.pipe(upstream);
  upstream.pipe(socket);

  let closed = 0;
  const onClose = () => {
    socket.destroy();
    upstream.destroy();
    if (++closed !== 2) return;
    const recorded = session.record({
      unit,
      decision,
      startedAt,
      result: { status: 101, bytes: toClient.bytes },
      attributes: {
        headers: headersAudit,
        upstream: d.settings.upstream,
        websocket: {
          bytes_up: toUpstream.bytes,
          bytes_down: toClient.bytes,
          messages_up: toUpstream.messages,
          messages_down: toClient.messages,
          control_frames: toUpstream.controlFrames + toClient.controlFrames,
        },
      },
    });
    // The unit event must precede session.end in the log, so the Session is closed here.
    d.track(recorded.then(() => closeCaller(conn, 'websocket closed', d.track)));
  };
  upstream.on('error', () => upstream.destroy());
  socket.once('close', onClose);
  upstream.once('close', onClose);
}
