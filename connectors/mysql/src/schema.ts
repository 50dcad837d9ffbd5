/**
 * The keys of a `type: mysql` connector beyond those every connector has, and the checks a
 * schema cannot express. Registered with the config loader through `mysqlConnector`.
 */
import { address, duration, str, strList, type ConfigProblem, type ConnectorSchema } from '@gatehouse/core';
import type { MysqlConnectorConfig } from './config.js';

export const mysqlSchema: ConnectorSchema = {
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
        password: { type: 'string', default: '' },
        tls: {
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: {
            mode: { enum: ['disable', 'prefer', 'require', 'verify-full'], default: 'prefer' },
            ca: str,
          },
        },
        by_group: {
          type: 'array',
          default: [],
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['groups', 'user'],
            properties: { groups: { ...strList, minItems: 1 }, user: str, password: { type: 'string', default: '' } },
          },
        },
      },
    },
    masking_mode: { enum: ['restricted', 'permissive'], default: 'restricted' },
    // MySQL's own max_allowed_packet tops out at 1 GiB.
    max_message_bytes: { type: 'integer', minimum: 1024, maximum: 1073741824, default: 67108864 },
    max_result_message_bytes: { type: 'integer', minimum: 65536, maximum: 1073741824, default: 268435456 },
    max_prepared_statements: { type: 'integer', minimum: 1, maximum: 1000000, default: 10000 },
    on_parse_error: { enum: ['deny', 'allow'], default: 'deny' },
    startup_timeout: duration('10s'),
  },
};

/** Keys the schema accepts that this connector would otherwise ignore. */
export function checkMysqlConfig(c: MysqlConnectorConfig): ConfigProblem | null {
  const tls = c.upstream.tls ?? { mode: 'prefer' };
  if (tls.ca !== undefined && tls.mode !== 'verify-full') {
    return { path: ['upstream', 'tls', 'ca'], message: `ca is used only with mode: verify-full (mode is ${tls.mode})` };
  }
  for (const [i, m] of c.masking.entries()) {
    if (m.json !== undefined) return { path: ['masking', i, 'json'], message: 'json paths apply to HTTP bodies: mysql connectors mask by columns and detectors' };
  }
  return null;
}
