/**
 * WebSocket (and any `Upgrade: websocket`) passthrough: the handshake is authenticated and
 * judged like a request, then bytes are relayed both ways with back-pressure (pipe) and the
 * whole conversation is audited as one unit when it closes, with message and byte counts.
 * Frames are not masked, so a caller with an active masking rule is refused the upgrade
 * (fail closed): it would otherwise read the upstream's messages in clear.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import { auditHeaders, upstreamRequestHeaders } from './headers.js';
import { authenticateCaller, closeCaller, credentialRequired, type CallerConnection } from './caller.js';
import { buildUnit } from './unit.js';
import { judgedTarget, judgeUnit } from './judge.js';
import { auditUnit } from './audit-view.js';
import { maskUrlText } from './detect-text.js';
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
  const judged = judgedTarget(req, d.stripMethodOverride);
  if (!judged.ok) {
    await session.protocolError(judged.detail, { upgrade: 'websocket' });
    refuse({ code: 'bad-request', status: 400, title: 'Bad Request', detail: judged.detail });
    return;
  }
  const masker = session.masker;
  const built = buildUnit(req, 'GET', judged.target, d.plan, null);
  built.match.upgrade = 'websocket';
  if (judged.override !== null) built.match.method_override = judged.override;
  const decision = await judgeUnit(session, built, judged.override);
  const unit = auditUnit(built, masker);
  const headersAudit = auditHeaders(req.rawHeaders, masker.active ? (v) => maskUrlText(masker, v) : null);
  if (decision.action !== 'allow') {
    const detail = decision.reason ?? `request denied by rule "${decision.rule}"`;
    await session.record({ unit, decision, startedAt, result: { status: 403, error: detail }, attributes: { headers: headersAudit, upstream: d.settings.upstream } });
    refuse({ code: 'policy-denied', status: 403, title: 'Forbidden', detail, rule: decision.rule });
    return;
  }
  if (masker.active) {
    const detail = 'WebSocket messages cannot be masked; refused for a caller with active masking rules';
    await session.record({ unit, decision, startedAt, result: { status: 403, error: detail }, attributes: { headers: headersAudit, upstream: d.settings.upstream, masked: true } });
    refuse({ code: 'masking-unsupported', status: 403, title: 'Forbidden', detail });
    return;
  }

  const query = withCredentialQuery(judged.target.query, d.auth.query);
  const path = d.basePath + judged.target.wirePath + (query ? `?${query}` : '');
  const headers = upstreamRequestHeaders(
    req.rawHeaders,
    req.headers.connection,
    { clientIp: conn.peer.address, proto: d.proto, host: req.headers.host },
    d.auth.headers,
    false,
    d.drop.plain,
  );
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
    d.track(Promise.resolve(recorded).then(() => closeCaller(conn, 'websocket closed', d.track)));
  };
  upstream.on('error', () => upstream.destroy());
  socket.once('close', onClose);
  upstream.once('close', onClose);
}
