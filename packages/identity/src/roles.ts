/** Admin API roles of an identity, by the `identity.roles` selectors of the config. */
import { matchesSelector, type GatehouseConfig, type Identity } from '@gatehouse/core';

export type Role = 'admin' | 'reviewer' | 'auditor';
const ROLES: readonly Role[] = ['admin', 'reviewer', 'auditor'];

export function roleOf(identity: Identity, roles: GatehouseConfig['identity']['roles']): Role[] {
  const out: Role[] = [];
  if (!roles) return out;
  for (const role of ROLES) {
    const sel = roles[role];
    if (sel && matchesSelector(sel, identity)) out.push(role);
  }
  return out;
}
