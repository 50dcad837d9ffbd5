/** Keys of a `type: postgres` connector. Owned by connectors/postgres. */
import { address, connectorBaseProperties, duration, str, strList, type Schema } from './schema-common.js';

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
        by_group: {
          type: 'array',
          default: [],
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['groups', 'user'],
            properties: { groups: { ...strList, minItems: 1 }, user: str, password: { type: 'string' } },
          },
        },
      },
    },
    masking_mode: { enum: ['restricted', 'permissive'], default: 'restricted' },
    max_message_bytes: { type: 'integer', minimum: 1024, maximum: 1073741824, default: 16777216 },
    on_parse_error: { enum: ['deny', 'allow'], default: 'deny' },
    startup_timeout: duration('10s'),
    // Largest upstream (result) message relayed; PostgreSQL's own field limit is 1 GiB.
    max_result_message_bytes: { type: 'integer', minimum: 65536, maximum: 1073741824 + 1024, default: 268435456 },
    // Named prepared statements and portals one session may hold (bounds gateway memory).
    max_prepared_statements: { type: 'integer', minimum: 1, maximum: 1000000, default: 10000 },
  },
};
