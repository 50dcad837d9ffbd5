/** Keys of a `type: http` connector. Owned by connectors/http. */
import { connectorBaseProperties, duration, str, type Schema } from './schema-common.js';

export const httpConnectorSchema: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'type', 'listen', 'upstream'],
  properties: {
    ...connectorBaseProperties,
    upstream: {
      type: 'object',
      additionalProperties: false,
      required: ['url'],
      properties: {
        url: { type: 'string', pattern: '^https?://' },
        headers: { type: 'object', additionalProperties: { type: 'string' } },
        credential: {
          type: 'object',
          additionalProperties: false,
          required: ['type'],
          properties: {
            type: { enum: ['bearer', 'basic', 'header', 'query'] },
            token: str,
            username: str,
            password: str,
            name: str,
            value: str,
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
