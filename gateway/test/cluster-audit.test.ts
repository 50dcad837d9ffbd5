/**
 * A connection worker's audit sink feeding the primary's intake, wired to a real audit log
 * (the IPC channel between them replaced by a function call and a structured clone): one
 * message per event-loop turn, strict appends resolved with their sequence numbers once
 * durable, detached appends acknowledged by receipt, and every bound failing closed.
 */
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openAuditLog, verifyLog, type AuditLog } from '@gatehouse/audit';
import { silentLogger, type AuditEventInput } from '@gatehouse/core';
import { IpcAuditSink, splitWindow } from '../src/cluster/audit-sink.js';
import { AuditIntake } from '../src/cluster/audit-intake.js';
import type { FromWorker, ToWorker } from '../src/cluster/messages.js';

type TapTest = Parameters<Parameters<typeof t.test>[0]>[0];

const event = (i: number): AuditEventInput => ({
  time: new Date().toISOString(),
  kind: 'unit',
  connector: 'pg',
  protocol: 'postgres',
  session: '00000000-0000-4000-8000-000000000001',
  identity: { subject: 'svc:test', issuer: 'static', groups: [] },
  unit: { type: 'statement', text: `SELECT ${i}` },
});

async function openLog(t: TapTest, durability: 'strict' | 'batched'): Promise<{ audit: AuditLog; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'gh-cluster-audit-'));
  const audit = await openAuditLog({ dataDir: dir, durability, windowMs: 5, checkpointIntervalSec: 60, origin: 'test' });
  t.teardown(async () => {
    await audit.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { audit, dir };
}

/** A sink and an intake joined as worker and primary are, with the messages counted. */
function wire(audit: AuditLog, durability: 'strict' | 'batched', o: { maxPending?: number; stallTimeoutMs?: number; gatherMs?: number; deliver?: () => boolean } = {}) {
  const sent: FromWorker[] = [];
  let refusedTold = 0;
  const toWorker = (m: ToWorker) => {
    const c = structuredClone(m);
    if (c.t === 'acked') sink.acked(c.id, c.seqs, c.refused);
    else if (c.t === 'received') sink.received(c.upTo);
    else if (c.t === 'audit-failed') sink.fail(c.message);
  };
  const intake = new AuditIntake(audit, toWorker, () => refusedTold++);
  const sink: IpcAuditSink = new IpcAuditSink({
    durability,
    logger: silentLogger,
    maxPending: o.maxPending,
    stallTimeoutMs: o.stallTimeoutMs,
    gatherMs: o.gatherMs,
    send: (m) => {
      sent.push(m);
      if (o.deliver && !o.deliver()) return true;
      const c = structuredClone(m);
      intake.batch(c.id, c.events, c.detached);
      return true;
    },
  });
  return { sink, intake, sent, refusedTold: () => refusedTold };
}

t.test('strict: one message per turn, each append resolved with its own sequence number once committed', async (t) => {
  const { audit, dir } = await openLog(t, 'strict');
  const { sink, sent } = wire(audit, 'strict');
  const seqs = await Promise.all([1, 2, 3, 4, 5].map((i) => sink.append(event(i))));
  t.same(seqs, [1, 2, 3, 4, 5], 'sequence numbers in order');
  t.equal(sent.length, 1, 'five appends of one turn travel as one message');
  t.equal(sent[0].t === 'audit' && sent[0].detached, false, 'awaited');
  t.same(await Promise.all([sink.append(event(6)), sink.append(event(7))]), [6, 7]);
  t.equal(sent.length, 2, 'the next turn is the next message');
  t.equal(await audit.size(), 7, 'the log has them all (committed before they resolved)');
  t.ok(await sink.close(1000), 'close: nothing left unacknowledged');
  await t.rejects(sink.append(event(8)), { code: 'audit.unavailable' }, 'a closed sink refuses');
  await audit.close();
  t.ok(verifyLog(dir).ok, 'the chain verifies');
});

t.test('batched: detached appends ride in one message and are acknowledged by receipt', async (t) => {
  const { audit } = await openLog(t, 'batched');
  const { sink, sent } = wire(audit, 'batched');
  for (let i = 0; i < 100; i++) sink.appendDetached(event(i));
  t.ok(await sink.close(2000), 'every detached batch was received by the primary');
  t.equal(sent.length, 1, 'one message for the turn');
  t.equal(sent[0].t === 'audit' && sent[0].detached, true, 'nobody awaits it');
  await new Promise((r) => setTimeout(r, 50));
  t.equal(await audit.size(), 100);
  t.equal(sink.failure, null);
});

t.test('batched with a gathering time: appends of several turns share one message; the window is split', async (t) => {
  const { audit } = await openLog(t, 'batched');
  // A long gathering so that a busy test machine cannot stretch five turns beyond it.
  const { sink, sent } = wire(audit, 'batched', { gatherMs: 200 });
  for (let i = 0; i < 5; i++) {
    sink.appendDetached(event(i));
    await new Promise((r) => setImmediate(r));
  }
  t.equal(sent.length, 0, 'nothing sent while gathering');
  await new Promise((r) => setTimeout(r, 400));
  t.equal(sent.length, 1, 'five turns, one message');
  t.ok(await sink.close(2000));
  t.same(splitWindow(5), { workerMs: 3, logMs: 2 }, 'default window: 3 ms in the worker, the log gathers and commits within the other 2');
  t.same(splitWindow(1), { workerMs: 0, logMs: 1 }, 'a 1 ms window: per turn');
  t.same(splitWindow(2), { workerMs: 0, logMs: 2 });
  t.same(splitWindow(3), { workerMs: 1, logMs: 2 });
  t.same(splitWindow(1000), { workerMs: 4, logMs: 996 }, 'gathering longer saves nothing');
  let sends = 0;
  const strict = new IpcAuditSink({ durability: 'strict', gatherMs: 50, logger: silentLogger, send: () => ++sends > 0 });
  void strict.append(event(1)).catch(() => {});
  await new Promise((r) => setImmediate(r));
  t.equal(sends, 1, 'strict ignores gathering: sent at the end of the turn (a caller waits)');
  strict.fail('done');
});

t.test('a failed log in the primary: awaited appends reject, the sink refuses everything after', async (t) => {
  const { audit } = await openLog(t, 'strict');
  const { sink, refusedTold } = wire(audit, 'strict');
  t.equal(await sink.append(event(1)), 1);
  await audit.close();
  await t.rejects(sink.append(event(2)), { code: 'audit.unavailable' }, 'the event the log could not take');
  t.ok(refusedTold() >= 1, 'the primary is told at once, to tell every other worker');
  t.match(sink.failure, { code: 'audit.unavailable' }, 'the sink has failed');
  sink.appendDetached(event(3));
  await t.rejects(sink.append(event(4)), { code: 'audit.unavailable' }, 'and stays failed');
});

t.test('a primary that stops answering: bounded pending events, then a stall, both fail closed', async (t) => {
  const { audit } = await openLog(t, 'strict');
  const bounded = wire(audit, 'strict', { maxPending: 10, deliver: () => false });
  const waiting = Array.from({ length: 10 }, (_, i) => bounded.sink.append(event(i)).catch((e: { code: string }) => e.code));
  await t.rejects(bounded.sink.append(event(11)), { code: 'audit.unavailable', message: /10 events not acknowledged/ }, 'the 11th is refused at the bound');
  bounded.sink.appendDetached(event(12));
  t.match(bounded.sink.failure, { message: /not acknowledged/ }, 'a detached event beyond the bound fails the sink');
  t.same(await Promise.all(waiting), new Array(10).fill('audit.unavailable'), 'those waiting are refused, not left hanging');

  const stalled = wire(audit, 'strict', { stallTimeoutMs: 200, deliver: () => false });
  const p = stalled.sink.append(event(1));
  await t.rejects(p, { code: 'audit.unavailable', message: /has not acknowledged audit events for over 200 ms/ });
  t.notOk(await stalled.sink.close(10), 'close reports nothing could be flushed');
});

t.test('a send that throws (channel closed) fails the sink', async (t) => {
  const sink = new IpcAuditSink({
    durability: 'strict',
    logger: silentLogger,
    send: () => {
      throw new Error('channel closed');
    },
  });
  await t.rejects(sink.append(event(1)), { code: 'audit.unavailable', message: /cannot reach the primary's audit log: channel closed/ });
});
