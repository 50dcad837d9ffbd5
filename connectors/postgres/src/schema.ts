/**
 * The keys of a `type: postgres` connector beyond those every connector has, and the
 * checks a schema cannot express. Registered with the config loader through
 * `postgresConnector` (index.ts).
 */
import { address, duration, str, strList, type ConfigProblem, type ConnectorSchema } from '@gatehouse/core';
import type { PostgresConnectorConfig } from './config.js';

export const postgresSchema: ConnectorSchema = {
  required: ['upstream'],
  properties: {
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

/** Keys the schema accepts that this connector would otherwise ignore. */
export function checkPostgresConfig(c: PostgresConnectorConfig): ConfigProblem | null {
  // Only verify-full checks the upstream's certificate; with any other mode a CA would be unused.
  if (c.upstream.ca !== undefined && c.upstream.sslmode !== 'verify-full') {
    return { path: ['upstream', 'ca'], message: `ca is used only with sslmode: verify-full (sslmode is ${c.upstream.sslmode})` };
  }
  for (const [i, m] of c.masking.entries()) {
    // Results are rows, not JSON documents: only column rules and detectors apply.
    if (m.json !== undefined) return { path: ['masking', i, 'json'], message: 'json paths apply to HTTP bodies: postgres connectors mask by columns and detectors' };
  }
  return null;
}
