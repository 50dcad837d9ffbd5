/**
 * The keys of a `type: http` connector beyond those every connector has, and the checks a
 * schema cannot express. Registered with the config loader through `httpConnector`
 * (index.ts). What resolveUpstreamAuth would refuse at start is refused here, at load,
 * with the line.
 */
import { duration, str, type ConfigProblem, type ConnectorSchema } from '@gatehouse/core';
import type { HttpConnectorConfig, HttpCredential } from './config.js';

/** RFC 9110 token: a header name. */
const HEADER_NAME = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$";
/** A value that cannot split a header (no CR, LF or NUL). */
const ONE_LINE = '^[^\\r\\n\\u0000]*$';
const oneLine = { type: 'string', minLength: 1, pattern: ONE_LINE };

export const httpSchema: ConnectorSchema = {
  required: ['upstream'],
  properties: {
    upstream: {
      type: 'object',
      additionalProperties: false,
      required: ['url'],
      properties: {
        url: { type: 'string', pattern: '^https?://' },
        headers: { type: 'object', propertyNames: { pattern: HEADER_NAME }, additionalProperties: { type: 'string', pattern: ONE_LINE } },
        credential: {
          type: 'object',
          additionalProperties: false,
          required: ['type'],
          properties: {
            type: { enum: ['bearer', 'basic', 'header', 'query'] },
            token: oneLine,
            username: oneLine,
            password: { type: 'string', pattern: ONE_LINE },
            name: oneLine,
            value: oneLine,
          },
        },
        ca: str,
        timeout: duration('30s'),
      },
    },
    max_body_bytes: { type: 'integer', minimum: 1024, maximum: 1073741824, default: 1048576 },
    // For a masked caller, a body the JSON rules cannot read (text, HTML, SSE, multipart, binary,
    // no Content-Type): masked by the detectors, or refused with 502. Replaces mask_text_bodies.
    unknown_content: { enum: ['detectors', 'refuse'], default: 'detectors' },
    // X-HTTP-Method-Override & co. and `_method=`: judged as the method they name, or removed.
    method_override: { enum: ['judge', 'strip'], default: 'judge' },
    // Request bodies up to this size are kept (masked) in the audit event; larger ones are streamed, not sampled.
    audit_body_bytes: { type: 'integer', minimum: 0, maximum: 65536, default: 4096 },
  },
};

/** Which credential keys each type uses: the rest would be ignored, so they are refused. */
const CREDENTIAL_KEYS: Record<HttpCredential['type'], { needs: (keyof HttpCredential)[]; may: (keyof HttpCredential)[] }> = {
  bearer: { needs: ['token'], may: [] },
  basic: { needs: ['username'], may: ['password'] },
  header: { needs: ['name', 'value'], may: [] },
  query: { needs: ['name', 'value'], may: [] },
};

/** Keys the schema accepts that this connector would otherwise ignore or override. */
export function checkHttpConfig(c: HttpConnectorConfig): ConfigProblem | null {
  const up = c.upstream;
  let url: URL;
  try {
    url = new URL(up.url);
  } catch {
    return { path: ['upstream', 'url'], message: 'is not a URL' };
  }
  // Requests go to the origin plus base path: anything else in the URL would be dropped.
  if (url.username || url.password) return { path: ['upstream', 'url'], message: 'user info in the URL would be dropped: use upstream.credential' };
  if (url.search || up.url.includes('?')) return { path: ['upstream', 'url'], message: 'a query in the URL would be dropped: use upstream.credential (type: query)' };
  if (url.hash || up.url.includes('#')) return { path: ['upstream', 'url'], message: 'a fragment in the URL would be dropped' };
  if (up.ca !== undefined && url.protocol !== 'https:') return { path: ['upstream', 'ca'], message: 'ca is used only with an https upstream url' };
  const cred = up.credential;
  if (cred) {
    const keys = CREDENTIAL_KEYS[cred.type];
    for (const k of keys.needs) {
      if (cred[k] === undefined) return { path: ['upstream', 'credential'], message: `type ${cred.type} needs "${k}"` };
    }
    for (const k of Object.keys(cred) as (keyof HttpCredential)[]) {
      if (k !== 'type' && !keys.needs.includes(k) && !keys.may.includes(k)) {
        return { path: ['upstream', 'credential', k], message: `not used by credential type ${cred.type}` };
      }
    }
    if (cred.type === 'header' && !new RegExp(HEADER_NAME).test(cred.name!)) {
      return { path: ['upstream', 'credential', 'name'], message: 'must be an HTTP header name' };
    }
    // The credential replaces a header of the same name: the configured one would never be sent.
    const replaced = cred.type === 'bearer' || cred.type === 'basic' ? 'authorization' : cred.type === 'header' ? cred.name!.toLowerCase() : null;
    const clash = replaced === null ? undefined : Object.keys(up.headers ?? {}).find((h) => h.toLowerCase() === replaced);
    if (clash !== undefined) return { path: ['upstream', 'headers', clash], message: `replaced by upstream.credential (type ${cred.type}): remove one of them` };
  }
  for (const [i, m] of c.masking.entries()) {
    // Bodies are JSON or text, not result columns: only json paths and detectors apply.
    if (m.columns !== undefined) return { path: ['masking', i, 'columns'], message: 'columns apply to SQL results: http connectors mask by json paths and detectors' };
  }
  return null;
}
