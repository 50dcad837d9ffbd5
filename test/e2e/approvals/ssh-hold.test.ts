/**
 * Hold mode through the SSH connector (real sshd, real ssh client): an exec a review rule
 * stops waits, with a line on stderr naming the request, and runs once approved; a denied
 * one exits 126 with the reason on stderr.
 */
import t from 'tap';
import type { Approval } from '@gatehouse/approvals';
import { TOKENS } from '../../lib/gateway.js';
import { runClient, sshAvailable, startSshd, type Sshd } from '../ssh/env.js';
import { startSshGateway, type SshGateway } from '../ssh/harness.js';
import { api, sleep } from './env.js';

const missing = sshAvailable();
if (missing) {
  t.pass(`skipped: ${missing}`);
} else {
  let sshd: Sshd;
  let g: SshGateway;
  t.before(async () => {
    sshd = await startSshd();
    g = await startSshGateway(sshd, {
      rules: '      - { name: reviewed-echo, match: { command: ["echo *"] }, action: review }',
      // svc:ci (TOKENS.admin in this harness) reviews; svc:deploy (the caller key) asks.
      identityExtra: '  roles:\n    reviewer: { subjects: ["svc:ci"] }',
      connectorExtra: '    review: { reviewers: { subjects: ["svc:ci"] }, mode: hold, timeout: 30s }',
    });
  });
  t.teardown(async () => {
    await g?.stop();
    await sshd?.stop();
  });

  const pendingOne = async (): Promise<Approval> => {
    for (let i = 0; i < 200; i++) {
      const r = await api<{ approvals: Approval[] }>(g.tg.adminUrl, TOKENS.admin, 'GET', '/api/v1/approvals?status=pending');
      if (r.body.approvals.length) return r.body.approvals[0];
      await sleep(50);
    }
    throw new Error('no pending request');
  };

  t.test('an exec held for approval runs once approved', async (t) => {
    const running = runClient('ssh', [...g.opts(), 'deploy@127.0.0.1', 'echo approved-run']);
    const a = await pendingOne();
    t.equal(a.unit.text, 'echo approved-run');
    t.equal(a.requester.subject, 'svc:deploy');
    t.equal((await api(g.tg.adminUrl, TOKENS.admin, 'POST', `/api/v1/approvals/${a.id}/approve`, { reason: 'deploy window' })).status, 200);
    const r = await running;
    t.equal(r.code, 0, r.stderr);
    t.equal(r.stdout, 'approved-run\n');
    t.match(r.stderr, new RegExp(`gatehouse: waiting for approval of request ${a.id}`));
  });

  t.test('a denied exec exits 126 naming the request', async (t) => {
    const running = runClient('ssh', [...g.opts(), 'deploy@127.0.0.1', 'echo denied-run']);
    const a = await pendingOne();
    t.equal((await api(g.tg.adminUrl, TOKENS.admin, 'POST', `/api/v1/approvals/${a.id}/deny`, { reason: 'not now' })).status, 200);
    const r = await running;
    t.equal(r.code, 126);
    t.equal(r.stdout, '');
    t.match(r.stderr, new RegExp(`approval request ${a.id} was denied by svc:ci: not now`));
  });
}
