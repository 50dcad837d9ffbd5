/**
 * RFC 9457 problem details: every refusal the connector sends is `application/problem+json`
 * so that callers can tell a Gatehouse refusal from an upstream error by its media type.
 */
import type { ServerResponse } from 'node:http';

export interface Problem {
  /** Short stable slug, becomes `type: urn:gatehouse:problem:<code>`. */
  code: string;
  status: number;
  title: string;
  detail: string;
  /** Name of the rule that decided, when one did. */
  rule?: string;
}

/** Encodes a problem body; kept separate so tests and the WebSocket path can reuse it. */
export function problemBody(p: Problem): string {
  const body: Record<string, unknown> = { type: `urn:gatehouse:problem:${p.code}`, title: p.title, status: p.status, detail: p.detail };
  if (p.rule) body.rule = p.rule;
  return JSON.stringify(body);
}

/**
 * Sends a problem unless the response already started (then the only honest thing left is
 * to cut the connection so the caller cannot mistake a truncated body for a complete one).
 */
export function sendProblem(res: ServerResponse, p: Problem, extraHeaders?: Record<string, string>, close = false): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = problemBody(p);
  const headers: Record<string, string | number> = {
    'content-type': 'application/problem+json',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    ...extraHeaders,
  };
  if (close) headers.connection = 'close';
  res.writeHead(p.status, headers);
  res.end(body);
}

/** Raw HTTP/1.1 problem response for a socket that never became a ServerResponse (upgrades). */
export function rawProblem(p: Problem, extraHeaders = ''): string {
  const body = problemBody(p);
  return (
    `HTTP/1.1 ${p.status} ${p.title}\r\ncontent-type: application/problem+json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
    `connection: close\r\n${extraHeaders}\r\n${body}`
  );
}

export const unauthorized = (detail: string): Problem => ({ code: 'unauthorized', status: 401, title: 'Unauthorized', detail });
export const WWW_AUTH_INVALID = 'Bearer error="invalid_token"';
