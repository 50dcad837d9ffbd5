/**
 * The words a caller reads when Gatehouse refuses a unit, the same in every protocol that
 * carries a text message (a SQL error, an SSH channel's stderr): it names the rule and says
 * why, and never echoes the statement or command (which may hold values the caller's
 * masking hides).
 */
import type { Decision } from './types.js';

export function denialMessage(d: Decision): string {
  const named = d.rule ? `denied by rule "${d.rule}"` : 'denied by policy';
  if (!d.reason) return `gatehouse: ${named}`;
  return d.rule && !d.reason.includes(`"${d.rule}"`) ? `gatehouse: ${named}: ${d.reason}` : `gatehouse: ${d.reason}`;
}
