/**
 * Review requests and grants as stored, and as the admin API shows them. A request carries
 * its own reviewers and quorum, so any gateway sharing the store can settle it, even one
 * that does not serve the connector.
 */
import type { GroupSelector } from '@gatehouse/core';

export type ApprovalStatus = 'pending' | 'approved' | 'denied' | 'expired' | 'cancelled' | 'used';
export const STATUSES: readonly ApprovalStatus[] = ['pending', 'approved', 'denied', 'expired', 'cancelled', 'used'];

export interface Verdict {
  reviewer: string;
  reason: string;
  /** ms since the epoch. */
  at: number;
}

export interface ApprovalRecord {
  id: string;
  status: ApprovalStatus;
  connector: string;
  protocol: string;
  requester: { subject: string; issuer: string; groups: string[] };
  /** The Session that asked (its audit events and this request's share the session id). */
  session: string;
  /** `text` as the audit would show it (masked for a masked caller). */
  unit: { type: string; text: string; paramsHash?: string };
  /** Hex SHA-256 binding connector, unit type, exact text and parameters. */
  unitHash: string;
  rule: string;
  mode: 'hold' | 'reject';
  required: number;
  reviewers: GroupSelector;
  timeoutMs: number;
  createdAt: number;
  expiresAt: number;
  approvals: Verdict[];
  denial?: Verdict;
}

export interface GrantRecord {
  id: string;
  subject: string;
  connector: string;
  reason: string;
  grantedBy: string;
  createdAt: number;
  expiresAt: number;
}

/** The admin API's Approval (times as ISO strings). */
export interface Approval {
  id: string;
  status: ApprovalStatus;
  connector: string;
  protocol: string;
  requester: { subject: string; issuer: string; groups: string[] };
  unit: { type: string; text: string; paramsHash?: string };
  rule: string;
  mode: 'hold' | 'reject';
  createdAt: string;
  expiresAt: string;
  required: number;
  approvals: { reviewer: string; reason: string; at: string }[];
  denial?: { reviewer: string; reason: string; at: string };
  session: string;
}

export interface Grant {
  id: string;
  subject: string;
  connector: string;
  reason: string;
  grantedBy: string;
  createdAt: string;
  expiresAt: string;
}

const iso = (ms: number) => new Date(ms).toISOString();
const verdict = (v: Verdict) => ({ reviewer: v.reviewer, reason: v.reason, at: iso(v.at) });

export function toApproval(r: ApprovalRecord): Approval {
  return {
    id: r.id,
    status: r.status,
    connector: r.connector,
    protocol: r.protocol,
    requester: r.requester,
    unit: r.unit,
    rule: r.rule,
    mode: r.mode,
    createdAt: iso(r.createdAt),
    expiresAt: iso(r.expiresAt),
    required: r.required,
    approvals: r.approvals.map(verdict),
    ...(r.denial ? { denial: verdict(r.denial) } : {}),
    session: r.session,
  };
}

export function toGrant(g: GrantRecord): Grant {
  return { ...g, createdAt: iso(g.createdAt), expiresAt: iso(g.expiresAt) };
}
