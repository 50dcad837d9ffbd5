/**
 * The `match:` keys each connector type fills in. A rule naming any other key could never
 * match (a silently dead rule), so compilePolicy rejects it at startup instead.
 */
const KEYS: Record<string, readonly string[]> = {
  postgres: ['statement', 'tables', 'where', 'database'],
  mysql: ['statement', 'tables', 'where', 'database'],
  http: ['method', 'path', 'query', 'host'],
  ssh: ['command', 'program', 'channel', 'path'],
};
/**
 * Keys whose values are command lines, not paths: there a glob's `*` also crosses `/`
 * (`rm -rf *` must match `rm -rf /var/www`). Everywhere else `*` stops at `/`.
 */
const COMMAND_KEYS: Record<string, readonly string[]> = { ssh: ['command', 'program'] };

/** True when `*` in a value of this key matches any run of characters, `/` included. */
export function starCrossesSlash(connectorType: string, key: string): boolean {
  return COMMAND_KEYS[connectorType]?.includes(key) ?? false;
}
/** Key prefixes followed by a free name, e.g. `header.x-tenant`. */
const PREFIXES: Record<string, readonly string[]> = { http: ['header.'] };

/** Keys a connector type supports, or null for an unknown connector type. */
export function knownMatchKeys(connectorType: string): readonly string[] | null {
  const keys = KEYS[connectorType];
  if (!keys) return null;
  return [...keys, ...(PREFIXES[connectorType] ?? []).map((p) => `${p}<name>`)];
}

export function isKnownMatchKey(connectorType: string, key: string): boolean {
  if (KEYS[connectorType]?.includes(key)) return true;
  return (PREFIXES[connectorType] ?? []).some((p) => key.length > p.length && key.startsWith(p));
}

/** The CEL variable that holds the unit's context for a connector type. */
export function unitVariable(connectorType: string): string | null {
  switch (connectorType) {
    case 'postgres':
    case 'mysql':
      return 'statement';
    case 'http':
      return 'request';
    case 'ssh':
      return 'command';
    default:
      return null;
  }
}
