/**
 * Building blocks shared by the top-level schema and each connector module's schema.
 * Connector packages import these from @gatehouse/core so that a key means the same
 * thing (and fails with the same message) whichever protocol it sits under.
 */

export type Schema = Record<string, unknown>;

export const str: Schema = { type: 'string', minLength: 1 };
export const strList: Schema = { type: 'array', items: str };
/** A duration: a number of milliseconds or `250ms`, `30s`, `5m`, `1h`; normalised to ms. */
export const duration = (dflt: string): Schema => ({ duration: true, default: dflt });
/** host:port */
export const address: Schema = { type: 'string', pattern: '^(\\[[0-9a-fA-F:.]+\\]|[^:\\s]+):[0-9]{1,5}$' };

/**
 * A key the schema knows but this build cannot honour: always refused at load with
 * `message`, so that nobody writes it and believes it works (see the `unavailable`
 * keyword in load.ts).
 */
export const unavailable = (message: string): Schema => ({ unavailable: message });

/** Groups and/or subjects; one that names nobody would be a silent no-op, so it is refused. */
export const groupSelector: Schema = {
  type: 'object',
  additionalProperties: false,
  properties: { groups: { ...strList, minItems: 1 }, subjects: { ...strList, minItems: 1 } },
  namesSomeone: true,
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
    // `review`: settled by the connector's `review:` block (without one, refused naming the rule).
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

/**
 * How a connector's `action: review` units are settled (docs/approvals.md). Bounds are
 * checked at load (load.ts): a hold waits at most 1h, a reject-mode request lives at most 24h.
 */
export const reviewBlock: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['reviewers'],
  properties: {
    reviewers: groupSelector,
    mode: { enum: ['hold', 'reject'], default: 'hold' },
    timeout: duration('5m'),
    approvals: { type: 'integer', minimum: 1, maximum: 10, default: 1 },
  },
};

/**
 * Keys every connector has, whatever its type. The loader adds `type` (the module's own)
 * and the module's keys; a module cannot redefine these.
 */
export const connectorBaseProperties: Record<string, Schema> = {
  name: { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]*$' },
  listen: address,
  tls: tlsSchema,
  allow: { type: 'array', items: groupSelector, default: [] },
  rules: { type: 'array', items: rule, default: [] },
  masking: { type: 'array', items: maskingRule, default: [] },
  review: reviewBlock,
};

/** Keys every connector must have; a module adds its own `required`. */
export const connectorBaseRequired: readonly string[] = ['name', 'type', 'listen'];
