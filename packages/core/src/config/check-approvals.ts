/**
 * Load-time checks of the approvals keys that JSON Schema cannot express: a key that would be
 * ignored, or a bound that depends on another key, is refused with its path.
 */
import type { ConfigProblem, GatehouseConfig } from './types.js';

/** Longest a caller's unit may be held waiting (the connection stays open meanwhile). */
export const MAX_HOLD_MS = 3_600_000;
/** Longest a reject-mode request stays open (and its approval usable). */
export const MAX_REJECT_MS = 86_400_000;

export function checkApprovals(c: GatehouseConfig): ConfigProblem | null {
  const a = c.approvals;
  if (a) {
    if (a.store === 'postgres' && !a.postgres_url) return { path: ['approvals'], message: 'store: postgres needs postgres_url' };
    if (a.store === 'sqlite' && a.postgres_url) return { path: ['approvals', 'postgres_url'], message: 'postgres_url applies only to store: postgres' };
  }
  for (const [i, conn] of c.connectors.entries()) {
    const r = conn.review;
    if (!r) continue;
    // A review block no rule reaches would only look like protection.
    if (!conn.rules.some((rule) => rule.action === 'review')) {
      return { path: ['connectors', i, 'review'], message: 'has no effect: no rule of this connector has action: review' };
    }
    const max = r.mode === 'hold' ? MAX_HOLD_MS : MAX_REJECT_MS;
    if (r.timeout < 1000 || r.timeout > max) {
      return { path: ['connectors', i, 'review', 'timeout'], message: `must be between 1s and ${r.mode === 'hold' ? '1h (mode: hold keeps the caller waiting)' : '24h'}` };
    }
  }
  return null;
}
