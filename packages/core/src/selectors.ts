import type { GroupSelector } from './config/types.js';
import type { Identity } from './types.js';

/** True when the identity is named by the selector (by subject, or by any shared group). */
export function matchesSelector(sel: GroupSelector, identity: Pick<Identity, 'subject' | 'groups'>): boolean {
  if (sel.subjects?.includes(identity.subject)) return true;
  if (sel.groups) for (const g of identity.groups) if (sel.groups.includes(g)) return true;
  return false;
}
