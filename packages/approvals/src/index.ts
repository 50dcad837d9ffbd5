/**
 * @gatehouse/approvals: just-in-time approval of reviewed units (docs/approvals.md).
 * `openApprovals` builds the service a gateway wires into its Sessions and admin API.
 */
import type { AuditSink, GatehouseConfig, Logger, ReviewPolicy } from '@gatehouse/core';
import { openSqliteStore } from './sqlite-store.js';
import { openPostgresStore } from './postgres-store.js';
import { createNotifier } from './notifier.js';
import { ApprovalService } from './service.js';

export { ApprovalService, hashUnit, MAX_GRANT_MINUTES, MAX_REASON, type ApprovalErrorCode, type ApprovalServiceOptions } from './service.js';
export { createNotifier, signWebhook, slackMessage, SIGNATURE_HEADER, TIMESTAMP_HEADER, type Notifier, type NotifierOptions, type ChangeKind } from './notifier.js';
export { openSqliteStore } from './sqlite-store.js';
export { openPostgresStore } from './postgres-store.js';
export { openSharedPool, type SharedPoolOptions } from './shared-pool.js';
export type { ApprovalStore } from './store.js';
export { STATUSES, toApproval, toGrant, type Approval, type ApprovalRecord, type ApprovalStatus, type Grant, type GrantRecord } from './types.js';

/** A connector's `review:` block as the Session and the service use it. */
export function reviewPolicy(review: { reviewers: ReviewPolicy['reviewers']; mode: ReviewPolicy['mode']; timeout: number; approvals: number }): ReviewPolicy {
  return { reviewers: review.reviewers, mode: review.mode, timeoutMs: review.timeout, required: review.approvals };
}

export interface OpenApprovalsOptions {
  audit: AuditSink;
  logger: Logger;
  /** Overrides for tests (poll, keep-alive and sweep intervals). */
  service?: Partial<Pick<ConstructorParameters<typeof ApprovalService>[0], 'pollMs' | 'keepaliveMs' | 'sweepMs'>>;
}

/**
 * The service for a config, or null when nothing needs one: no connector has a `review:`
 * block and the store is not shared (a gateway that only approves others' requests sets
 * `approvals.store: postgres`).
 */
export async function openApprovals(config: GatehouseConfig, o: OpenApprovalsOptions): Promise<ApprovalService | null> {
  const a = config.approvals ?? { store: 'sqlite' as const, max_pending: 10, notify: [] };
  const connectors = new Map(config.connectors.flatMap((c) => (c.review ? [[c.name, { type: c.type, policy: reviewPolicy(c.review) }] as const] : [])));
  if (connectors.size === 0 && a.store !== 'postgres') return null;
  const log = o.logger.child({ component: 'approvals' });
  const store = a.store === 'postgres' ? await openPostgresStore(a.postgres_url!, log) : openSqliteStore(config.data_dir);
  const notifier = a.notify.length ? createNotifier({ hooks: a.notify, consoleUrl: a.console_url ?? `http://${config.admin.listen}`, logger: log }) : null;
  return new ApprovalService({ store, audit: o.audit, logger: log, notifier, connectors, maxPending: a.max_pending, ...o.service });
}
