/**
 * JSON Schema of gatehouse.yaml. One place for every top-level key, its type and its
 * default; each connector type's keys come from its ConnectorModule, so the schema is
 * built for the modules a host serves.
 */
import type { ConnectorModule } from '../connector.js';
import {
  address,
  APPROVALS_UNAVAILABLE,
  connectorBaseProperties,
  connectorBaseRequired,
  groupSelector,
  str,
  strList,
  tlsSchema,
  unavailable,
  type Schema,
} from './schema-common.js';

const oidcIssuer: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['issuer', 'audience'],
  properties: {
    issuer: str,
    // An empty list would match no token at all.
    audience: { anyOf: [str, { ...strList, minItems: 1 }] },
    jwks_url: { type: 'string', pattern: '^https?://[^\\s]+$' },
    groups_claim: { ...str, default: 'groups' },
    algorithms: {
      type: 'array',
      // Empty would silently mean "the defaults": refuse it instead.
      minItems: 1,
      items: { enum: ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] },
      default: ['RS256', 'ES256', 'EdDSA', 'PS256'],
    },
    clock_tolerance: { type: 'integer', minimum: 0, maximum: 300, default: 30 },
  },
};

/** Same alphabet and bound as the identity package's static-token shape: any other token could never match. */
const staticToken: Schema = { type: 'string', minLength: 16, maxLength: 16384, pattern: '^[\\x21-\\x2d\\x2f-\\x7e]+$' };

/** One OpenSSH public key line (`type base64 [comment]`); the identity package parses it. */
const sshPublicKeyLine: Schema = {
  type: 'string',
  pattern: '^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp256|ecdsa-sha2-nistp384|ecdsa-sha2-nistp521) [A-Za-z0-9+/]+={0,2}( [^\\r\\n]*)?$',
};

/** The schema of one connector of a module's type: the common keys, then the module's. */
function connectorSchema(m: ConnectorModule): Schema {
  for (const key of Object.keys(m.schema.properties)) {
    if (key === 'type' || Object.hasOwn(connectorBaseProperties, key)) {
      throw new TypeError(`connector module "${m.type}" redefines the common key "${key}"`);
    }
  }
  return {
    type: 'object',
    additionalProperties: false,
    required: [...connectorBaseRequired, ...(m.schema.required ?? [])],
    properties: { ...connectorBaseProperties, type: { const: m.type }, ...m.schema.properties },
  };
}

export function buildConfigSchema(modules: readonly ConnectorModule[]): Schema {
  const types = modules.map((m) => m.type);
  if (new Set(types).size !== types.length) throw new TypeError(`two connector modules serve one type: ${types.join(', ')}`);
  return {
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
          // Written with durability strict it would do nothing: refused (see checkSemantics).
          window_ms: { type: 'integer', minimum: 1, maximum: 10000, default: 5 },
          checkpoint_interval: { type: 'integer', minimum: 1, maximum: 86400, default: 60 },
          // Also the signing key's name in the signed note: no whitespace, no '+'.
          origin: { type: 'string', pattern: '^[^\\s+]+$', default: 'gatehouse' },
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
              properties: { token: staticToken, subject: str, groups: { ...strList, default: [] } },
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
          ssh_keys: {
            type: 'array',
            default: [],
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['key', 'subject'],
              properties: { key: sshPublicKeyLine, subject: str, groups: { ...strList, default: [] } },
            },
          },
          ssh_user_ca: {
            type: 'array',
            default: [],
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['key'],
              properties: { key: sshPublicKeyLine, groups_from: { enum: ['principals'] }, groups: { ...strList, default: [] } },
            },
          },
          roles: {
            type: 'object',
            additionalProperties: false,
            default: {},
            properties: {
              admin: groupSelector,
              // Nothing in this build checks the reviewer role: accepting it would grant nothing.
              reviewer: unavailable(APPROVALS_UNAVAILABLE.replace('this block', 'the reviewer role')),
              auditor: groupSelector,
            },
          },
        },
      },
      connectors: {
        type: 'array',
        default: [],
        items: {
          type: 'object',
          required: ['type'],
          // A type no module serves (mysql, ssh, a typo) is refused naming the type.
          properties: { type: { type: 'string', registeredType: types } },
          // Pick the schema by type so that errors name the right keys.
          ...(modules.length ? { allOf: modules.map((m) => ({ if: { required: ['type'], properties: { type: { const: m.type } } }, then: connectorSchema(m) })) } : {}),
        },
      },
    },
  };
}
