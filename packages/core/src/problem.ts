/**
 * RFC 9457 problem details: the one shape of every error Gatehouse itself answers over HTTP
 * (the admin API, the HTTP connector's refusals, any later HTTP-speaking connector), so a
 * caller tells a Gatehouse refusal from an upstream's error by its media type and `type`.
 *
 * `type` is `urn:gatehouse:problem:<code>`, `<code>` a short stable slug (`policy-denied`,
 * `unauthorized`, …); the list is in docs/operations.md. Pure: writing the answer is the caller's.
 */

export const PROBLEM_MEDIA_TYPE = 'application/problem+json';

export interface Problem {
  /** Short stable slug; the `type` URI is `urn:gatehouse:problem:<code>`. */
  code: string;
  status: number;
  /** The status's reason phrase (the same for every occurrence of a code). */
  title: string;
  /** What happened this time. */
  detail: string;
  /** Name of the rule that decided, when one did. */
  rule?: string;
}

/** The `type` URI of a problem code. */
function problemType(code: string): string {
  return `urn:gatehouse:problem:${code}`;
}

/** The JSON body of a problem: `{type, title, status, detail[, rule]}`. */
export function problemBody(p: Problem): string {
  const body: Record<string, unknown> = { type: problemType(p.code), title: p.title, status: p.status, detail: p.detail };
  if (p.rule) body.rule = p.rule;
  return JSON.stringify(body);
}
