/**
 * Group derivation from a claim named by a dotted path. Claim names may themselves
 * contain dots (Kubernetes puts everything under the key `kubernetes.io`), so
 * `kubernetes.io.namespace` is resolved by trying the longest key first at each level:
 * `{"kubernetes.io": {"namespace": "payments"}}` → `payments`.
 */

export function readClaimPath(claims: Record<string, unknown>, path: string): unknown {
  if (path === '') return undefined;
  return walk(claims, path.split('.'), 0);
}

function walk(node: unknown, parts: string[], from: number): unknown {
  if (node === null || typeof node !== 'object' || Array.isArray(node)) return undefined;
  const obj = node as Record<string, unknown>;
  for (let to = parts.length; to > from; to--) {
    const key = parts.slice(from, to).join('.');
    if (!Object.prototype.hasOwnProperty.call(obj, key)) continue;
    const found = to === parts.length ? obj[key] : walk(obj[key], parts, to);
    if (found !== undefined) return found;
  }
  return undefined;
}

/** A string becomes one group, an array its string members; anything else, no groups. */
export function groupsFrom(value: unknown): string[] {
  if (typeof value === 'string') return value === '' ? [] : [value];
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string' && v !== '');
  return [];
}
