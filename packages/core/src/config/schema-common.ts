/** Building blocks shared by the top-level schema and each connector type's schema. */

export type Schema = Record<string, unknown>;


export const str: Schema = { type: 'string', minLength: 1 };
export const strList: Schema = { type: 'array', items: str };
/** A duration: a number of milliseconds or `250ms`, `30s`, `5m`, `1h`; normalised to ms. */
export const duration = (dflt: string): Schema => ({ duration: true, default: dflt });
/** host:port */
export const address: Schema = { type: 'string', pattern: '^(\\[[0-9a-fA-F:.]+\\]|[^:\\s]+):[0-9]{1,5}$' };

export const groupSelector: Schema = {
  type: 'object',
  additionalProperties: false,
  properties: { groups: strList, subjects: strList },
};

export const tlsSchema: Schema = {
  type: 'object',
  additionalProperties: false,
  properties: { cert: str, key: str, ca: str, client_auth: { type: 'boolean', default: false } },
};

export const rule: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'action'],
  properties: {
    name: str,
    match: {
      type: 'object',
      additionalProperties: { anyOf: [str, strList] },
    },
    when: str,
    action: { enum: ['allow', 'deny', 'review'] },
  },
  anyOf: [{ required: ['match'] }, { required: ['when'] }],
};

export const maskingRule: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['with'],
  properties: {
    columns: strList,
    json: strList,
    detectors: {
      type: 'array',
      items: { enum: ['credit_card', 'iban', 'ssn', 'email', 'jwt', 'aws_key', 'gcp_key', 'github_token'] },
    },
    with: { enum: ['redact', 'last4', 'hash', 'null', 'email'] },
    applies_to: groupSelector,
    exempt: groupSelector,
  },
  anyOf: [{ required: ['columns'] }, { required: ['json'] }, { required: ['detectors'] }],
};

/** Keys every connector has; a connector type's schema spreads these into its own. */
export const connectorBaseProperties: Record<string, Schema> = {
  name: { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]*$' },
  type: { enum: ['postgres', 'mysql', 'ssh', 'http'] },
  listen: address,
  tls: tlsSchema,
  allow: { type: 'array', items: groupSelector, default: [] },
  rules: { type: 'array', items: rule, default: [] },
  masking: { type: 'array', items: maskingRule, default: [] },
  review: {
    type: 'object',
    additionalProperties: false,
    required: ['reviewers'],
    properties: {
      reviewers: groupSelector,
      mode: { enum: ['hold', 'deny'], default: 'hold' },
      timeout: duration('5m'),
    },
  },
};

