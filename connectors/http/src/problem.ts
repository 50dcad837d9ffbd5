/**
 * Writing RFC 9457 problem details: every refusal the connector sends is
 * `application/problem+json` with a `urn:gatehouse:problem:<code>` type (the scheme and the
 * body are @gatehouse/core's `problemBody`, shared with the admin API).
 */
import type { ServerResponse } from 'node:http';
import { PROBLEM_MEDIA_TYPE, problemBody, type Problem } from '@gatehouse/core';

export type { Problem } from '@gatehouse/core';

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
    'content-type': PROBLEM_MEDIA_TYPE,
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
    `HTTP/1.1 ${p.status} ${p.title}\r\ncontent-type: ${PROBLEM_MEDIA_TYPE}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` + `connection: close\r\n${extraHeaders}\r\n${body}`
  );
}

export const unauthorized = (detail: string): Problem => ({ code: 'unauthorized', status: 401, title: 'Unauthorized', detail });
export const internalError = (): Problem => ({ code: 'internal', status: 500, title: 'Internal Server Error', detail: 'request handling failed' });
export const WWW_AUTH_INVALID = 'Bearer error="invalid_token"';
