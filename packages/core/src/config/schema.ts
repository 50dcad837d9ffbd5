/**
 * JSON Schema of gatehouse.yaml. One place for every key, its type and its default.
 * Connector types add their own keys in schema-<type>.ts.
 */
import { address, connectorBaseProperties, groupSelector, str, strList, tlsSchema, type Schema } from './schema-common.js';
import { postgresConnectorSchema } from './schema-postgres.js';
import { httpConnectorSchema } from './schema-http.js';

const genericConnectorSchema: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'type', 'listen', 'upstream'],
  properties: { ...connectorBaseProperties, type: { enum: ['mysql', 'ssh'] }, upstream: { type: 'object' } },
};

const oidcIssuer: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['issuer', 'audience'],
  properties: {
    issuer: str,
    audience: { anyOf: [str, strList] },
    jwks_url: str,
    groups_claim: { type: 'string', default: 'groups' },
    algorithms: {
      type: 'array',
      items: { enum: ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] },
      default: ['RS256', 'ES256', 'EdDSA', 'PS256'],
    },
    clock_tolerance: { type: 'integer', minimum: 0, maximum: 300, default: 30 },
  },
};

export const configSchema: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['data_dir'],
  properties: {
    data_dir: str,
    admin: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: { listen: { ...address, default: '127.0.0.1:8080' }, tls: tlsSchema },
    },
    log: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: { level: { enum: ['trace', 'debug', 'info', 'warn', 'error'], default: 'info' } },
    },
    audit: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        durability: { enum: ['strict', 'batched'], default: 'strict' },
        window_ms: { type: 'integer', minimum: 1, maximum: 10000, default: 5 },
        checkpoint_interval: { type: 'integer', minimum: 1, maximum: 86400, default: 60 },
        origin: { type: 'string', default: 'gatehouse' },
      },
    },
    identity: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        oidc: { type: 'array', items: oidcIssuer, default: [] },
        static_tokens: {
          type: 'array',
          default: [],
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['token', 'subject'],
            properties: { token: { type: 'string', minLength: 16 }, subject: str, groups: { ...strList, default: [] } },
          },
        },
        certificates: {
          type: 'array',
          default: [],
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['subject'],
            properties: { cn: str, uri: { type: 'string', pattern: '^[A-Za-z][A-Za-z0-9+.-]*:\\S+$' }, subject: str, groups: { ...strList, default: [] } },
            // Exactly one certificate field: a mapping never guesses which one it meant.
            oneOf: [{ required: ['cn'] }, { required: ['uri'] }],
          },
        },
        roles: {
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: { admin: groupSelector, reviewer: groupSelector, auditor: groupSelector },
        },
      },
    },
    connectors: {
      type: 'array',
      default: [],
      items: {
        type: 'object',
        required: ['type'],
        properties: { type: { enum: ['postgres', 'mysql', 'ssh', 'http'] } },
        // Pick the schema by type so that errors name the right keys.
        allOf: [
          { if: { properties: { type: { const: 'postgres' } } }, then: postgresConnectorSchema },
          { if: { properties: { type: { const: 'http' } } }, then: httpConnectorSchema },
          { if: { properties: { type: { enum: ['mysql', 'ssh'] } } }, then: genericConnectorSchema },
        ],
      },
    },
  },
};
