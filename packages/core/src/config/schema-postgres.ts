/** Keys of a `type: postgres` connector. Owned by connectors/postgres. */
import { address, connectorBaseProperties, duration, str, type Schema } from './schema-common.js';

export const postgresConnectorSchema: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'type', 'listen', 'upstream'],
  properties: {
    ...connectorBaseProperties,
    upstream: {
      type: 'object',
      additionalProperties: false,
      required: ['address', 'database', 'user'],
      properties: {
        address,
        database: str,
        user: str,
        password: { type: 'string' },
        sslmode: { enum: ['disable', 'prefer', 'require', 'verify-full'], default: 'prefer' },
        ca: str,
      },
    },
    max_message_bytes: { type: 'integer', minimum: 1024, maximum: 1073741824, default: 16777216 },
    on_parse_error: { enum: ['deny', 'allow'], default: 'deny' },
    startup_timeout: duration('10s'),
  },
};
