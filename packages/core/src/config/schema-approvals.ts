/**
 * The top-level `approvals:` key (docs/approvals.md): where review requests live and who is
 * told about them. Kept apart from schema.ts so that the approvals keys have one home.
 */
import { str, type Schema } from './schema-common.js';

/** An http(s) URL; a webhook secret travels in its signature, never in the URL. */
const httpUrl: Schema = { type: 'string', pattern: '^https?://[^\\s]+$' };

export const approvalsSchema: Schema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    store: { enum: ['sqlite', 'postgres'], default: 'sqlite' },
    // Required with store: postgres, refused without it (load.ts).
    postgres_url: { type: 'string', pattern: '^postgres(ql)?://\\S+$' },
    // Open requests one identity may have at once: a caller cannot flood the reviewers.
    max_pending: { type: 'integer', minimum: 1, maximum: 1000, default: 10 },
    // Base of the approve/deny links in notifications (default: http://<admin.listen>).
    console_url: httpUrl,
    notify: {
      type: 'array',
      default: [],
      maxItems: 16,
      items: {
        type: 'object',
        additionalProperties: false,
        properties: {
          webhook: httpUrl,
          // An unsigned hook could be forged by anyone who can reach the receiver: required.
          secret: { ...str, minLength: 16 },
          slack: httpUrl,
        },
        oneOf: [
          { required: ['webhook', 'secret'], not: { required: ['slack'] } },
          { required: ['slack'], not: { anyOf: [{ required: ['webhook'] }, { required: ['secret'] }] } },
        ],
      },
    },
  },
};
