/**
 * The service over the real SQLite store: request binding (identity, connector, unit hash),
 * single use, N distinct approvals, self-approval, concurrent verdicts, the expiry sweep,
 * cancellation by signal, grants, and fail-closed when the audit log is down.
 */
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger, type AuditEventInput, type AuditSink, type GatehouseError, type Identity, type ReviewPolicy, type ReviewRequest } from '@gatehouse/core';
import { ApprovalService, openSqliteStore } from '../src/index.js';

/** An audit sink that keeps events in memory (the e2e tests use the real log). */
class MemoryAudit implements AuditSink {
  events: AuditEventInput[] = [];
  failure: GatehouseError | null = null;
  readonly durability = 'strict' as const;
  async append(e: AuditEventInput): Promise<number> {
    if (this.failure) throw new Error(this.failure.message);
    return this.events.push(e);
  }
}

const id = (subject: string, groups: string[] = []): Identity => ({ subject, issuer: 'static', groups, claims: {} });
const etl = id('svc:etl', ['payments']);
const carol = id('carol', ['dba']);
const dave = id('dave', ['dba']);

type Test = { teardown(fn: () => unknown): void };

function setup(t: Test, policy: Partial<ReviewPolicy> = {}, maxPending = 5) {
  const dir = mkdtempSync(join(tmpdir(), 'gh-approvals-'));
  const audit = new MemoryAudit();
  const full: ReviewPolicy = { reviewers: { groups: ['dba'] }, mode: 'reject', timeoutMs: 60_000, required: 1, ...policy };
  const svc = new ApprovalService({
    store: openSqliteStore(dir),
    audit,
    logger: silentLogger,
    connectors: new Map([['db', { type: 'postgres', policy: full }]]),
    maxPending,
    pollMs: 50,
    sweepMs: 50,
    keepaliveMs: 50,
  });
  t.teardown(async () => {
    await svc.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const req = (text: string, who: Identity = etl, paramsHash?: string): ReviewRequest => ({
    connector: { name: 'db', type: 'postgres' },
    session: 'sess-1',
    identity: who,
    rule: 'bulk',
    policy: full,
    unit: { type: 'statement', text, shown: text, ...(paramsHash ? { paramsHash } : {}) },
  });
  return { svc, audit, req };
}

const idIn = (reason = '') => /request ([0-9a-f-]{36})/.exec(reason)?.[1] ?? '';

t.test('reject mode: bound to identity, connector, text and parameters; single use', async (t) => {
  const { svc, req, audit } = setup(t);
  const d = await svc.review(req('DELETE FROM t', etl, 'aa'), {});
  t.equal(d.action, 'deny');
  const rid = idIn(d.reason);
  t.ok(rid);
  t.equal((await svc.approve(rid, carol, 'ok')).ok, true);
  t.equal((await svc.review(req('DELETE FROM t', etl, 'bb'), {})).action, 'deny', 'other parameters: not covered');
  t.equal((await svc.review(req('DELETE FROM t', { ...etl, issuer: 'https://idp' }, 'aa'), {})).action, 'deny', 'same subject, other issuer: not covered');
  t.equal((await svc.review(req('DELETE FROM t', etl, 'aa'), {})).action, 'allow');
  t.equal((await svc.review(req('DELETE FROM t', etl, 'aa'), {})).action, 'deny', 'used once');
  t.same(
    audit.events.filter((e) => e.meta?.approval === rid).map((e) => e.kind),
    ['approval.requested', 'approval.approved', 'approval.used'],
  );
});

t.test('verdicts: reason, reviewer selector, self, N distinct, one winner under concurrency', async (t) => {
  const { svc, req } = setup(t, { required: 2 });
  const rid = idIn((await svc.review(req('UPDATE t SET x = 1'), {})).reason);
  t.match(await svc.approve(rid, carol, ''), { ok: false, error: { code: 'approval.bad_request' } });
  t.match(await svc.approve(rid, id('erin', ['web']), 'x'), { ok: false, error: { code: 'approval.forbidden' } });
  t.match(await svc.approve(rid, { ...etl, groups: ['dba'] }, 'x'), { ok: false, error: { code: 'approval.self' } });
  t.match(await svc.approve('nope', carol, 'x'), { ok: false, error: { code: 'approval.not_found' } });
  const [a, b] = await Promise.all([svc.approve(rid, carol, 'x'), svc.approve(rid, carol, 'y')]);
  t.equal([a, b].filter((r) => r.ok).length, 1, 'the same reviewer counts once, even concurrently');
  const done = await svc.approve(rid, dave, 'z');
  t.ok(done.ok && done.value.status === 'approved');
  t.match(await svc.deny(rid, dave, 'late'), { ok: false, error: { code: 'approval.not_pending' } });
});

t.test('hold mode: released by approval, refused by denial, cancelled by the signal, expired by time', async (t) => {
  const { svc, req, audit } = setup(t, { mode: 'hold', timeoutMs: 400 });
  const notices: string[] = [];
  const held = svc.review(req('DELETE FROM a'), { onHold: (n) => notices.push(`${n.first}`) });
  await new Promise((r) => setTimeout(r, 120));
  const [pending] = await svc.list('pending');
  t.equal((await svc.approve(pending.id, carol, 'ok')).ok, true);
  t.match(await held, { action: 'allow', rule: 'bulk' });
  t.equal(notices[0], 'true');
  t.ok(notices.length >= 2, 'keep-alive notices while waiting');

  const denied = svc.review(req('DELETE FROM b'), {});
  await new Promise((r) => setTimeout(r, 50));
  const [p2] = await svc.list('pending');
  await svc.deny(p2.id, dave, 'no');
  t.match(await denied, { action: 'deny', reason: `approval request ${p2.id} was denied by dave: no` });

  const ac = new AbortController();
  const cancelled = svc.review(req('DELETE FROM c'), { signal: ac.signal });
  await new Promise((r) => setTimeout(r, 50));
  ac.abort();
  t.match(await cancelled, { action: 'deny', reason: /cancelled: the caller went away/ });

  const t0 = Date.now();
  t.match(await svc.review(req('DELETE FROM d'), {}), { action: 'deny', reason: /expired without a decision/ });
  t.ok(Date.now() - t0 >= 380);
  const kinds = audit.events.map((e) => e.kind);
  for (const k of ['approval.used', 'approval.denied', 'approval.cancelled', 'approval.expired']) t.ok(kinds.includes(k as never), k);
});

t.test('the sweep expires reject-mode requests nobody waits for', async (t) => {
  const { svc, req } = setup(t, { timeoutMs: 100 });
  const rid = idIn((await svc.review(req('DELETE FROM e'), {})).reason);
  const seen: string[] = [];
  svc.subscribe((a) => a.id === rid && seen.push(a.status));
  await new Promise((r) => setTimeout(r, 300));
  t.equal((await svc.get(rid))?.status, 'expired');
  t.same(seen, ['expired']);
});

t.test('max pending, grants, and fail closed on a failed audit log', async (t) => {
  const { svc, req, audit } = setup(t, {}, 2);
  await svc.review(req('DELETE FROM f1'), {});
  await svc.review(req('DELETE FROM f2'), {});
  t.match(await svc.review(req('DELETE FROM f3'), {}), { action: 'deny', reason: /too many open approval requests/ });
  t.match(await svc.grant(carol, { subject: 'svc:etl', connector: 'db', minutes: 5, reason: 'window' }), { ok: true });
  t.match(await svc.review(req('DELETE FROM f3'), {}), { action: 'allow', reason: /granted by carol/ });
  t.match(await svc.grant(carol, { subject: 'svc:etl', connector: 'db', minutes: 100000, reason: 'x' }), { ok: false, error: { code: 'approval.bad_request' } });
  audit.failure = { code: 'audit.unavailable', message: 'disk full' };
  const other = { ...etl, subject: 'svc:other' };
  t.match(await svc.review(req('DELETE FROM g', other), {}), { action: 'deny', reason: /approval store is unavailable/ });
  t.equal((await svc.list('pending')).filter((a) => a.requester.subject === 'svc:other').length, 0, 'an unaudited request is not left pending');
});
