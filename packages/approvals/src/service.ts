/**
 * The approvals service: settles `review` decisions for Sessions (core's `Approvals`) and
 * serves the reviewers' operations (admin API, CLI). Every change is an audit event, is
 * pushed to live subscribers (the console's event stream) and to the notification hooks,
 * and is announced to other gateways sharing the store.
 */
import { createHash, randomUUID } from 'node:crypto';
import {
  err,
  matchesSelector,
  ok,
  type Approvals,
  type AuditEventInput,
  type AuditSink,
  type Decision,
  type HoldNotice,
  type Identity,
  type Logger,
  type Result,
  type ReviewPolicy,
  type ReviewRequest,
} from '@gatehouse/core';
import { isError, type ApprovalStore } from './store.js';
import type { ChangeKind, Notifier } from './notifier.js';
import { toApproval, toGrant, type Approval, type ApprovalRecord, type ApprovalStatus, type Grant, type GrantRecord } from './types.js';

export interface ApprovalServiceOptions {
  store: ApprovalStore;
  audit: AuditSink;
  logger: Logger;
  notifier?: Notifier | null;
  /** Connectors this gateway serves that have a `review:` block (for grants). */
  connectors: ReadonlyMap<string, { type: string; policy: ReviewPolicy }>;
  /** Open requests one identity may have (`approvals.max_pending`). */
  maxPending: number;
  /** How often a held unit re-reads its request even without a notification (default: 1 s for postgres, 5 s for sqlite). */
  pollMs?: number;
  /** Keep-alive notices to a held caller (default 10 s). */
  keepaliveMs?: number;
  /** Expiry sweep of requests nobody waits for (default 2 s). */
  sweepMs?: number;
}

/** Errors of the reviewer operations; the admin API maps them to HTTP statuses. */
export type ApprovalErrorCode = 'approval.bad_request' | 'approval.not_found' | 'approval.forbidden' | 'approval.self' | 'approval.not_pending';

export const MAX_REASON = 1000;
export const MAX_GRANT_MINUTES = 24 * 60;
const LIST_LIMIT = 500;

type Actor = Pick<Identity, 'subject' | 'issuer' | 'groups'>;

export class ApprovalService implements Approvals {
  private readonly waiters = new Map<string, Set<() => void>>();
  /** Units being held: close() lets them record their cancellation first (bounded). */
  private readonly holds = new Set<Promise<Decision>>();
  private readonly subscribers = new Set<(a: Approval) => void>();
  private readonly sweep: NodeJS.Timeout;
  private readonly pollMs: number;
  private readonly keepaliveMs: number;
  private closed = false;

  constructor(private readonly o: ApprovalServiceOptions) {
    this.pollMs = o.pollMs ?? (o.store.kind === 'postgres' ? 1000 : 5000);
    this.keepaliveMs = o.keepaliveMs ?? 10_000;
    o.store.onRemoteChange((id) => void this.remoteChange(id));
    this.sweep = setInterval(() => void this.expireDue(), o.sweepMs ?? 2000);
    this.sweep.unref();
  }

  // ---------------------------------------------------------------- the Session's side

  async review(req: ReviewRequest, opts: { signal?: AbortSignal; onHold?: (n: HoldNotice) => void }): Promise<Decision> {
    const { rule, policy, identity } = req;
    const refuse = (reason: string): Decision => ({ action: 'deny', rule, reason });
    try {
      if (this.closed) return refuse(`requires approval by rule "${rule}"; the gateway is stopping`);
      const now = Date.now();
      const grant = await this.o.store.activeGrant(identity.subject, req.connector.name, now);
      if (grant) {
        await this.appendOrThrow(this.event('approval.used', req.connector, req.session, identity, { grant: grant.id, rule, unit: shownUnit(req) }));
        return { action: 'allow', rule, reason: `granted by ${grant.grantedBy} until ${new Date(grant.expiresAt).toISOString()} (grant ${grant.id})` };
      }
      const unitHash = hashUnit(req);
      const open = await this.o.store.findOpen(identity.subject, identity.issuer, req.connector.name, unitHash, now);
      if (open?.status === 'approved') {
        const used = await this.use(open.id);
        if (used) return { action: 'allow', rule, reason: `approved request ${open.id}` };
      } else if (open && policy.mode === 'reject') {
        return refuse(`approval request ${open.id} is pending (rule "${rule}"); retry once it is approved`);
      }
      if ((await this.o.store.countPending(identity.subject, identity.issuer, now)) >= this.o.maxPending) {
        return refuse(`requires approval by rule "${rule}"; too many open approval requests for ${identity.subject} (max ${this.o.maxPending})`);
      }
      const rec = await this.create(req, unitHash, now);
      if (policy.mode === 'reject') {
        return refuse(`approval request ${rec.id} created (rule "${rule}"); retry the same unit once it is approved, before ${new Date(rec.expiresAt).toISOString()}`);
      }
      const held = this.hold(rec, opts.signal, opts.onHold);
      this.holds.add(held);
      try {
        return await held;
      } finally {
        this.holds.delete(held);
      }
    } catch (e) {
      // Unreachable store, failed audit write: refuse, never pass it through (fail closed).
      this.o.logger.error({ err: (e as Error).message, connector: req.connector.name }, 'approvals unavailable; reviewed unit refused');
      return refuse(`requires approval by rule "${rule}"; the approval store is unavailable`);
    }
  }

  private async create(req: ReviewRequest, unitHash: string, now: number): Promise<ApprovalRecord> {
    const rec: ApprovalRecord = {
      id: randomUUID(),
      status: 'pending',
      connector: req.connector.name,
      protocol: req.connector.type,
      requester: { subject: req.identity.subject, issuer: req.identity.issuer, groups: req.identity.groups },
      session: req.session,
      unit: shownUnit(req),
      unitHash,
      rule: req.rule,
      mode: req.policy.mode,
      required: req.policy.required,
      reviewers: req.policy.reviewers,
      timeoutMs: req.policy.timeoutMs,
      createdAt: now,
      expiresAt: now + req.policy.timeoutMs,
      approvals: [],
    };
    await this.o.store.insert(rec);
    try {
      await this.appendOrThrow(this.recordEvent('approval.requested', rec, req.identity, {}));
    } catch (e) {
      // Not audited: it must not be approvable either.
      await this.transition(rec.id, ['pending'], 'cancelled', null, 'audit unavailable').catch(() => {});
      throw e;
    }
    this.changed('requested', rec);
    return rec;
  }

  /** Wait for the verdict: approved → allow (the request is used); denied, expired, or the caller gone → deny. */
  private async hold(rec: ApprovalRecord, signal: AbortSignal | undefined, onHold: ((n: HoldNotice) => void) | undefined): Promise<Decision> {
    const { id, rule } = rec;
    const refuse = (reason: string): Decision => ({ action: 'deny', rule, reason });
    const notice = (first: boolean) => {
      try {
        onHold?.({ id, remainingMs: Math.max(0, rec.expiresAt - Date.now()), first });
      } catch (e) {
        this.o.logger.warn({ err: (e as Error).message }, 'hold notice failed');
      }
    };
    notice(true);
    const keepalive = setInterval(() => notice(false), this.keepaliveMs);
    try {
      for (;;) {
        if (this.closed) {
          await this.transition(id, ['pending', 'approved'], 'cancelled', null, 'the gateway is stopping');
          return refuse(`approval request ${id} cancelled: the gateway is stopping`);
        }
        if (signal?.aborted) {
          const c = await this.transition(id, ['pending', 'approved'], 'cancelled', null, 'the caller went away');
          return refuse(c ? `approval request ${id} cancelled: the caller went away` : `approval request ${id} is no longer usable`);
        }
        const cur = await this.o.store.get(id);
        if (!cur) return refuse(`approval request ${id} disappeared from the store`);
        switch (cur.status) {
          case 'approved': {
            const used = await this.use(id);
            return used ? { action: 'allow', rule, reason: `approved request ${id}` } : refuse(`approval request ${id} is no longer usable`);
          }
          case 'denied':
            return refuse(`approval request ${id} was denied by ${cur.denial?.reviewer ?? 'a reviewer'}: ${cur.denial?.reason ?? ''}`);
          case 'expired':
            return refuse(`approval request ${id} expired without a decision`);
          case 'cancelled':
          case 'used':
            return refuse(`approval request ${id} is ${cur.status}`);
        }
        const left = cur.expiresAt - Date.now();
        if (left <= 0) {
          const x = await this.transition(id, ['pending'], 'expired', null, null);
          if (x) return refuse(`approval request ${id} expired without a decision`);
          continue; // decided in the same instant: read it again
        }
        await this.wait(id, Math.min(left, this.pollMs), signal);
      }
    } finally {
      clearInterval(keepalive);
    }
  }

  private wait(id: string, ms: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve) => {
      let set = this.waiters.get(id);
      if (!set) this.waiters.set(id, (set = new Set()));
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        set.delete(done);
        if (set.size === 0) this.waiters.delete(id);
        resolve();
      };
      const timer = setTimeout(done, Math.max(1, ms));
      set.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  /** approved → used, once (single use). */
  private async use(id: string): Promise<ApprovalRecord | null> {
    return this.transition(id, ['approved'], 'used', null, null);
  }

  /** An atomic status change for the system's own reasons (use, expiry, cancellation), audited and published. */
  private async transition(id: string, from: ApprovalStatus[], to: 'used' | 'expired' | 'cancelled', actor: Actor | null, reason: string | null): Promise<ApprovalRecord | null> {
    const now = Date.now();
    const r = await this.o.store.modify<'no'>(id, (cur) => {
      if (!from.includes(cur.status)) return { error: 'no' };
      if (to === 'expired' && cur.expiresAt > now) return { error: 'no' };
      if (to === 'used' && cur.expiresAt <= now) return { error: 'no' };
      return { ...cur, status: to };
    });
    if (!r || isError(r)) return null;
    const kind = to === 'used' ? 'approval.used' : to === 'expired' ? 'approval.expired' : 'approval.cancelled';
    // Use and cancellation happen on the requester's connection; an expiry is nobody's act.
    await this.append(this.recordEvent(kind, r, actor ?? (to === 'expired' ? null : r.requester), reason ? { reason } : {}));
    this.changed(to, r);
    return r;
  }

  // ---------------------------------------------------------------- the reviewers' side

  async list(status: ApprovalStatus | 'all'): Promise<Approval[]> {
    return (await this.o.store.list(status, LIST_LIMIT)).map(toApproval);
  }

  async get(id: string): Promise<Approval | null> {
    const r = await this.o.store.get(id);
    return r ? toApproval(r) : null;
  }

  approve(id: string, reviewer: Actor, reason: unknown): Promise<Result<Approval>> {
    return this.verdict(id, reviewer, reason, 'approve');
  }

  deny(id: string, reviewer: Actor, reason: unknown): Promise<Result<Approval>> {
    return this.verdict(id, reviewer, reason, 'deny');
  }

  private async verdict(id: string, reviewer: Actor, reasonIn: unknown, kind: 'approve' | 'deny'): Promise<Result<Approval>> {
    const reason = checkReason(reasonIn);
    if (!reason.ok) return reason;
    const now = Date.now();
    const r = await this.o.store.modify<{ code: ApprovalErrorCode; message: string }>(id, (cur) => {
      if (cur.requester.subject === reviewer.subject) return { error: { code: 'approval.self', message: `${reviewer.subject} requested ${id} and cannot review it` } };
      if (!matchesSelector(cur.reviewers, reviewer)) {
        return { error: { code: 'approval.forbidden', message: `${reviewer.subject} is not a reviewer for connector ${cur.connector}` } };
      }
      if (cur.status !== 'pending' || cur.expiresAt <= now)
        return { error: { code: 'approval.not_pending', message: `request ${id} is ${cur.status === 'pending' ? 'expired' : cur.status}` } };
      if (cur.approvals.some((v) => v.reviewer === reviewer.subject)) {
        return { error: { code: 'approval.not_pending', message: `${reviewer.subject} has already approved ${id}` } };
      }
      const v = { reviewer: reviewer.subject, reason: reason.value, at: now };
      if (kind === 'deny') return { ...cur, status: 'denied', denial: v };
      const approvals = [...cur.approvals, v];
      if (approvals.length < cur.required) return { ...cur, approvals };
      // Reject mode: the caller retries after the approval; give it the whole timeout from now.
      return { ...cur, approvals, status: 'approved', expiresAt: cur.mode === 'reject' ? now + cur.timeoutMs : cur.expiresAt };
    });
    if (r === null) return err('approval.not_found', `no approval request ${id}`);
    if (isError<{ code: ApprovalErrorCode; message: string }>(r)) return err(r.error.code, r.error.message);
    await this.append(
      this.recordEvent(kind === 'deny' ? 'approval.denied' : 'approval.approved', r, reviewer, {
        reason: reason.value,
        approvals: r.approvals.length,
        required: r.required,
        status: r.status,
      }),
    );
    this.changed(kind === 'deny' ? 'denied' : 'approved', r);
    return ok(toApproval(r));
  }

  async grant(by: Actor, input: { subject?: unknown; connector?: unknown; minutes?: unknown; reason?: unknown }): Promise<Result<Grant>> {
    const reason = checkReason(input.reason);
    if (!reason.ok) return reason;
    const { subject, connector, minutes } = input;
    if (typeof subject !== 'string' || subject === '' || subject.length > 256) return err('approval.bad_request', 'subject is required');
    if (typeof connector !== 'string' || connector === '') return err('approval.bad_request', 'connector is required');
    if (typeof minutes !== 'number' || !Number.isInteger(minutes) || minutes < 1 || minutes > MAX_GRANT_MINUTES) {
      return err('approval.bad_request', `minutes must be an integer from 1 to ${MAX_GRANT_MINUTES}`);
    }
    const c = this.o.connectors.get(connector);
    if (!c) return err('approval.not_found', `connector ${connector} has no review block on this gateway`);
    if (subject === by.subject) return err('approval.self', `${by.subject} cannot grant to itself`);
    if (!matchesSelector(c.policy.reviewers, by)) return err('approval.forbidden', `${by.subject} is not a reviewer for connector ${connector}`);
    const now = Date.now();
    const g: GrantRecord = { id: randomUUID(), subject, connector, reason: reason.value, grantedBy: by.subject, createdAt: now, expiresAt: now + minutes * 60_000 };
    await this.o.store.insertGrant(g);
    await this.append(this.event('approval.granted', { name: connector, type: c.type }, '', by, { grant: toGrant(g) }));
    return ok(toGrant(g));
  }

  async grants(): Promise<Grant[]> {
    return (await this.o.store.listGrants(Date.now(), LIST_LIMIT)).map(toGrant);
  }

  /** Every change (create, approve, deny, expire, cancel, use) as it happens; returns the unsubscribe. */
  subscribe(fn: (a: Approval) => void): () => void {
    this.subscribers.add(fn);
    return () => this.subscribers.delete(fn);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweep);
    for (const set of this.waiters.values()) for (const w of set) w();
    if (this.holds.size) await Promise.race([Promise.allSettled([...this.holds]), new Promise((r) => setTimeout(r, 2000).unref())]);
    await this.o.notifier?.close();
    await this.o.store.close();
  }

  // ---------------------------------------------------------------- plumbing

  private changed(kind: ChangeKind, r: ApprovalRecord): void {
    const a = toApproval(r);
    for (const w of this.waiters.get(r.id) ?? []) w();
    this.publish(a);
    this.o.notifier?.notify(kind, a);
    this.o.store.announce(r.id).catch((e: Error) => this.o.logger.warn({ err: e.message }, 'approvals: announce failed (others will poll)'));
  }

  private publish(a: Approval): void {
    for (const s of this.subscribers) {
      try {
        s(a);
      } catch (e) {
        this.o.logger.warn({ err: (e as Error).message }, 'approvals subscriber failed');
      }
    }
  }

  private async remoteChange(id: string): Promise<void> {
    for (const w of this.waiters.get(id) ?? []) w();
    if (this.subscribers.size === 0) return;
    const r = await this.o.store.get(id).catch(() => null);
    if (r) this.publish(toApproval(r));
  }

  private async expireDue(): Promise<void> {
    if (this.closed) return;
    try {
      for (const id of await this.o.store.due(Date.now(), 100)) await this.transition(id, ['pending', 'approved'], 'expired', null, null);
    } catch (e) {
      this.o.logger.warn({ err: (e as Error).message }, 'approvals: expiry sweep failed');
    }
  }

  private recordEvent(kind: AuditEventInput['kind'], r: ApprovalRecord, actor: Actor | null, extra: Record<string, unknown>): AuditEventInput {
    return this.event(kind, { name: r.connector, type: r.protocol }, r.session, actor, {
      approval: r.id,
      rule: r.rule,
      mode: r.mode,
      requester: r.requester.subject,
      unit: r.unit,
      ...extra,
    });
  }

  private event(kind: AuditEventInput['kind'], connector: { name: string; type: string }, session: string, actor: Actor | null, meta: Record<string, unknown>): AuditEventInput {
    return {
      time: new Date().toISOString(),
      kind,
      connector: connector.name,
      protocol: connector.type,
      session,
      identity: actor ? { subject: actor.subject, issuer: actor.issuer, groups: actor.groups } : null,
      meta,
    };
  }

  private async appendOrThrow(e: AuditEventInput): Promise<void> {
    if (this.o.audit.failure) throw new Error('audit log unavailable');
    await this.o.audit.append(e);
  }

  /** A change already made in the store: audit it; a failed write is logged (the log then refuses all work). */
  private async append(e: AuditEventInput): Promise<void> {
    try {
      await this.appendOrThrow(e);
    } catch (x) {
      this.o.logger.error({ err: (x as Error).message, kind: e.kind }, 'approvals: audit append failed');
    }
  }
}

function shownUnit(req: ReviewRequest): ApprovalRecord['unit'] {
  return { type: req.unit.type, text: req.unit.shown, ...(req.unit.paramsHash ? { paramsHash: req.unit.paramsHash } : {}) };
}

/** What an approval is bound to: connector, unit type, the exact text and parameters. */
export function hashUnit(req: ReviewRequest): string {
  return createHash('sha256')
    .update(JSON.stringify([req.connector.name, req.unit.type, req.unit.text, req.unit.paramsHash ?? null]))
    .digest('hex');
}

function checkReason(reason: unknown): Result<string> {
  if (typeof reason !== 'string' || reason.trim() === '') return err('approval.bad_request', 'a reason is required');
  if (reason.length > MAX_REASON) return err('approval.bad_request', `reason is longer than ${MAX_REASON} characters`);
  return ok(reason.trim());
}
