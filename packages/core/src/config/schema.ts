/**
 * JSON Schema of gatehouse.yaml. One place for every top-level key, its type and its
 * default; each connector type's keys come from its ConnectorModule, so the schema is
 * built for the modules a host serves.
 */
import { hostname } from 'node:os';
import type { ConnectorModule } from '../connector.js';
import { address, connectorBaseProperties, connectorBaseRequired, duration, groupSelector, str, strList, tlsSchema, type Schema } from './schema-common.js';
import { approvalsSchema } from './schema-approvals.js';

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

/**
 * `gateway_id` when the file has none: the host name, lower-cased, with anything outside
 * the id alphabet replaced by `-` (a Kubernetes pod name is already valid), else `gatehouse`.
 */
export function defaultGatewayId(host = hostname()): string {
  const id = host
    .toLowerCase()
    .replace(/[^a-z0-9_.-]/g, '-')
    .replace(/^[^a-z0-9]+/, '')
    .slice(0, 128);
  return id || 'gatehouse';
}

/** `gateway_id`: names this instance in the shipped trail and the central store (a path segment, a NATS token). */
const gatewayId: Schema = { type: 'string', pattern: '^[a-z0-9][a-z0-9_.-]*$', maxLength: 128 };

/** A sink's own name: its cursor file is `<state_dir>/cursor-<name>.json`. */
const sinkName: Schema = { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]*$', maxLength: 64 };

/** `agent`: the shipping agent (agent/, `gatehouse agent -c FILE`); see docs/agent.md. */
const agentSchema: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['sinks'],
  properties: {
    sinks: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        required: ['type'],
        properties: { type: { enum: ['postgres', 'nats', 'http', 'file'] } },
        allOf: [
          {
            if: { properties: { type: { const: 'postgres' } } },
            then: { additionalProperties: false, required: ['url'], properties: { type: {}, name: sinkName, url: { type: 'string', pattern: '^postgres(ql)?://' } } },
          },
          {
            if: { properties: { type: { const: 'nats' } } },
            then: {
              additionalProperties: false,
              required: ['url'],
              properties: {
                type: {},
                name: sinkName,
                url: { type: 'string', pattern: '^(nats|tls)://[^\\s]+$' },
                // Messages go to <subject>.<gateway_id>.<event|checkpoint|alert>.
                subject: { type: 'string', pattern: '^[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*$', default: 'gatehouse.audit' },
                stream: { type: 'string', pattern: '^[A-Za-z0-9_-]+$', default: 'GATEHOUSE_AUDIT' },
              },
            },
          },
          {
            if: { properties: { type: { const: 'http' } } },
            then: {
              additionalProperties: false,
              required: ['url', 'secret'],
              properties: {
                type: {},
                name: sinkName,
                url: { type: 'string', pattern: '^https?://[^\\s]+$' },
                // HMAC-SHA256 key; a short one would be guessable.
                secret: { type: 'string', minLength: 16 },
                timeout: duration('10s'),
              },
            },
          },
          {
            if: { properties: { type: { const: 'file' } } },
            then: {
              additionalProperties: false,
              required: ['path'],
              properties: { type: {}, name: sinkName, path: str, max_bytes: { type: 'integer', minimum: 4096, default: 104857600 } },
            },
          },
        ],
      },
    },
    batch_size: { type: 'integer', minimum: 1, maximum: 10000, default: 1000 },
    /** Events read and verified ahead of the slowest sink, at most (bounded memory). */
    read_ahead: { type: 'integer', minimum: 1, maximum: 1000000, default: 20000 },
    poll_interval: duration('200ms'),
    retry_max: duration('30s'),
    reverify_interval: duration('10m'),
    state_dir: str,
    metrics_listen: address,
    verifier_key: { type: 'string', pattern: '^[^\\s+]+\\+[0-9a-f]{8}\\+[A-Za-z0-9+/=]+$' },
    witness_key: str,
    witness_name: { type: 'string', pattern: '^[^\\s+]+$' },
  },
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
      gateway_id: { ...gatewayId, default: defaultGatewayId() },
      // Connection worker processes (gateway/src/cluster): `auto` = one per available core.
      workers: { workerCount: true, default: 1 },
      agent: agentSchema,
      admin: {
        type: 'object',
        additionalProperties: false,
        default: {},
        properties: { listen: { ...address, default: '127.0.0.1:8080' }, tls: tlsSchema },
      },
      // Human sign-in for the web console (gateway/src/console): OIDC authorization code + PKCE.
      console: {
        type: 'object',
        additionalProperties: false,
        required: ['oidc'],
        properties: {
          oidc: {
            type: 'object',
            additionalProperties: false,
            required: ['issuer', 'client_id', 'client_secret', 'redirect_url'],
            properties: {
              issuer: { type: 'string', pattern: '^https?://[^\\s]+$' },
              client_id: str,
              client_secret: str,
              // The console answers the callback at /ui/callback only: any other path could never work.
              redirect_url: { type: 'string', pattern: '^https?://[^\\s/?#]+/ui/callback$' },
            },
          },
        },
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
              // May approve, deny and grant where a connector's review.reviewers also names them.
              reviewer: groupSelector,
              auditor: groupSelector,
            },
          },
        },
      },
      approvals: approvalsSchema,
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
