/**
 * The Session against the real engines (audit log, identity, policy, masking, recording):
 * what a connector relies on, without any protocol in between.
 */
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Session, silentLogger, type SessionServices, type Unit } from '@gatehouse/core';
import { openAuditLog, readEvents, verifyLog } from '@gatehouse/audit';
import { createAuthenticator } from '@gatehouse/identity';
import { compilePolicy } from '@gatehouse/policy';
import { compileMasking } from '@gatehouse/masking';
import { createRecorder, readRecording } from '@gatehouse/recording';
import type { TapTest } from '../../lib/tap.js';

const TOKEN = 'tok-session-test-0123456789';
const OUTSIDER = 'tok-outsider-test-0123456789';

async function setup(t: TapTest) {
  const dataDir = mkdtempSync(join(tmpdir(), 'gh-session-'));
  const audit = await openAuditLog({ dataDir, durability: 'strict', windowMs: 5, checkpointIntervalSec: 60, origin: 'test' });
  const authenticator = createAuthenticator({
    oidc: [],
    static_tokens: [
      { token: TOKEN, subject: 'svc:billing', groups: ['payments'] },
      { token: OUTSIDER, subject: 'svc:other', groups: ['marketing'] },
    ],
    roles: {},
  });
  const policy = compilePolicy(
    [
      { name: 'no-delete', match: { statement: ['delete'] }, action: 'deny' },
      { name: 'big-update', match: { statement: ['update'] }, action: 'review' },
    ],
    { connectorType: 'postgres' },
  );
  const masking = compileMasking([{ columns: ['card_number'], with: 'last4' }]);
  if (!policy.ok || !masking.ok) throw new Error('compile failed');
  const services: SessionServices = {
    connector: { name: 'db', type: 'postgres' },
    allow: [{ groups: ['payments'] }],
    audit,
    authenticator,
    policy: policy.value,
    masking: masking.value,
    recorder: createRecorder({ dataDir }),
    metrics: null,
    logger: silentLogger,
  };
  t.teardown(async () => {
    authenticator.close();
    await audit.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  return { dataDir, audit, services, peer: { address: '127.0.0.1', port: 5555, tls: false, claimedUser: 'app' } };
}

const unit = (kind: string, text: string): Unit => ({
  type: 'statement',
  text,
  match: { statement: [kind], tables: ['t'], where: 'present' },
  context: { kind, kinds: [kind], tables: ['t'], where: 'present', text },
});

t.test('a session authenticates, decides, records and ends — all in the audit log', async (t) => {
  const { dataDir, services, peer } = await setup(t);
  const s = new Session(services, peer);
  t.equal(s.decide(unit('select', 'select 1')).action, 'deny', 'nothing is allowed before authentication');
  const id = await s.authenticate(TOKEN);
  t.ok(id.ok);
  t.equal(s.identity?.subject, 'svc:billing');
  t.ok(s.masker.active, 'the card_number rule applies to this caller');

  t.same(s.decide(unit('select', 'select * from t')), { action: 'allow' });
  const denied = s.decide(unit('delete', 'delete from t where id = 1'));
  t.equal(denied.action, 'deny');
  t.equal(denied.rule, 'no-delete');
  const review = s.decide(unit('update', 'update t set a = 1 where id = 2'));
  t.equal(review.action, 'review');
  const settled = await s.review(unit('update', ''), review);
  t.equal(settled.action, 'deny', 'without approvals a review is refused');
  t.match(settled.reason, /big-update/);

  const started = Date.now();
  const rec = await s.record({
    unit: unit('select', 'select card_number from t where email = $1'),
    decision: { action: 'allow' },
    startedAt: started,
    result: { status: 'SELECT 1', rows: 1 },
    params: ['4111 1111 1111 1111'],
  });
  t.ok(rec.ok);
  await s.record({ unit: unit('delete', 'delete from t where id = 1'), decision: denied, startedAt: started, result: { error: '42501' } });
  await s.end('client closed');

  const events = readEvents(dataDir, { session: s.id });
  t.same(
    events.map((e) => e.kind),
    ['session.start', 'unit', 'unit', 'session.end'],
  );
  t.equal(events[0].meta?.claimedUser, 'app', 'the claimed user is kept, not trusted');
  t.equal(events[1].identity?.subject, 'svc:billing');
  t.equal(events[1].result?.rows, 1);
  t.same(events[2].decision, { action: 'deny', rule: 'no-delete' });
  t.ok(verifyLog(dataDir).ok, 'the log verifies');
  const timeline = readRecording(dataDir, s.id);
  t.equal(timeline.entries.length, 2);
  t.equal(timeline.entries[1].decision, 'deny');
});

t.test('authentication failures and callers outside the allow list are refused and audited', async (t) => {
  const { dataDir, services, peer } = await setup(t);
  const bad = new Session(services, peer);
  const r1 = await bad.authenticate('not-a-real-token-at-all');
  t.notOk(r1.ok);
  const outsider = new Session(services, peer);
  const r2 = await outsider.authenticate(OUTSIDER);
  t.notOk(r2.ok);
  if (!r2.ok) t.equal(r2.error.code, 'auth.forbidden');
  t.equal(outsider.identity, null);
  const events = readEvents(dataDir, { kind: 'auth.failure' });
  t.equal(events.length, 2);
  t.equal(events[1].identity?.subject, 'svc:other', 'a verified but forbidden caller is named');
  t.notMatch(JSON.stringify(events), /not-a-real-token|tok-outsider/, 'tokens never reach the audit log');
});
