/**
 * SSH connector end to end: a real sshd behind the gateway, the real `ssh` client in front.
 * Key login (identity.ssh_keys) and token-as-password login, the gateway's own upstream key
 * with known_hosts, exec with exit status, a denied exec (126, the connection goes on), a
 * shell refused by a review rule, agent/X11 forwarding refused, and the audit trail.
 */
import t from 'tap';
import { TOKENS } from '../../lib/gateway.js';
import { runClient, sshAvailable, startSshd, type Sshd } from './env.js';
import { eventually, ssh2Connect, ssh2Exec, startSshGateway, type SshGateway } from './harness.js';

const missing = sshAvailable();
if (missing) {
  t.pass(`skipped: ${missing}`);
} else {
  let sshd: Sshd;
  let g: SshGateway;
  t.before(async () => {
    sshd = await startSshd();
    g = await startSshGateway(sshd);
  });
  t.teardown(async () => {
    await g?.stop();
    await sshd?.stop();
  });

  t.test('exec through the gateway with a bound key: output, exit status, audit', async (t) => {
    const r = await runClient('ssh', [...g.opts(), 'deploy@127.0.0.1', 'echo hello-from-target; id -un; exit 3']);
    t.equal(r.code, 3, r.stderr);
    t.equal(r.stdout, `hello-from-target\n${sshd.user}\n`);
    const start = await eventually(() => g.events('session.start').find((e) => (e.meta as { ssh?: { method?: string } })?.ssh?.method === 'publickey'));
    t.match(start, {
      identity: { subject: 'svc:deploy', issuer: 'ssh-key', groups: ['deployers'] },
      meta: { claimedUser: 'deploy', auth: 'publickey', ssh: { method: 'publickey', algorithm: 'ssh-ed25519', fingerprint: /^SHA256:/ } },
    });
    const unit = await eventually(() => g.events('unit').find((e) => e.unit?.text.startsWith('echo hello-from-target')));
    t.match(unit, {
      session: start.session,
      decision: { action: 'allow' },
      result: { status: 3, bytes: Buffer.byteLength(r.stdout) },
      unit: { type: 'command', attributes: { channel: 'exec', program: ['echo'], exit: { code: 3 }, recording: { sha256: /^[0-9a-f]{64}$/ } } },
    });
    const end = await eventually(() => g.events('session.end').find((e) => e.session === start.session));
    t.ok(end.seq > unit.seq, 'the unit precedes session.end');
  });

  t.test('stdin reaches the target and large output comes back whole', async (t) => {
    const input = 'x'.repeat(3 * 1024 * 1024);
    const r = await runClient('ssh', [...g.opts(), 'deploy@127.0.0.1', 'wc -c; head -c 5000000 /dev/zero | tr "\\0" y'], { input });
    t.equal(r.code, 0, r.stderr);
    t.equal(r.stdout.slice(0, r.stdout.indexOf('\n')).trim(), String(input.length));
    t.equal(r.stdout.length - r.stdout.indexOf('\n') - 1, 5_000_000);
  });

  t.test('back-pressure: a caller that stops reading, or a target that stops reading, costs no memory', async (t) => {
    const { readFileSync } = await import('node:fs');
    const c = await ssh2Connect(g, { privateKey: readFileSync(g.caller.path) });
    t.teardown(() => c.end());
    const total = 400 * 1024 * 1024;
    // The target writes 400 MB; the caller reads nothing for a while.
    const ch = await new Promise<import('ssh2').ClientChannel>((resolve, reject) => c.exec(`head -c ${total} /dev/zero`, (e, x) => (e ? reject(e) : resolve(x))));
    ch.pause();
    const before = process.memoryUsage().rss;
    // Windows and stream buffers fill first (a few MiB per hop), then nothing more is taken.
    await new Promise((r) => setTimeout(r, 1000));
    const ramp = process.memoryUsage().rss;
    await new Promise((r) => setTimeout(r, 2000));
    const after = process.memoryUsage().rss;
    t.ok(after - ramp < 16 * 1024 * 1024, `no growth while paused: ${((after - ramp) / 1048576).toFixed(1)} MiB in 2 s`);
    t.ok(after - before < 160 * 1024 * 1024, `far less than the ${total / 1048576} MiB the target sent: ${((after - before) / 1048576).toFixed(1)} MiB`);
    let got = 0;
    ch.on('data', (d: Buffer) => (got += d.length));
    const closed = new Promise((r) => ch.on('close', r));
    ch.resume();
    await closed;
    t.equal(got, total, 'everything arrives once the caller reads');
    // The caller sends 200 MB to a command that reads nothing for two seconds.
    const up = await new Promise<import('ssh2').ClientChannel>((resolve, reject) => c.exec('sleep 2; wc -c', (e, x) => (e ? reject(e) : resolve(x))));
    let out = '';
    up.on('data', (d: Buffer) => (out += d.toString()));
    const done = new Promise((r) => up.on('close', r));
    const chunk = Buffer.alloc(1024 * 1024);
    const start = process.memoryUsage().rss;
    let peak = 0;
    for (let i = 0; i < 200; i++) {
      if (!up.write(chunk)) await new Promise((r) => up.once('drain', r));
      peak = Math.max(peak, process.memoryUsage().rss - start);
    }
    up.end();
    await done;
    t.equal(out.trim(), String(200 * 1024 * 1024));
    t.ok(peak < 96 * 1024 * 1024, `memory grew by at most ${(peak / 1048576).toFixed(1)} MiB while the target did not read`);
  });

  t.test('a denied exec writes the reason to stderr and exits 126; the connection goes on', async (t) => {
    const r = await runClient('ssh', [...g.opts(), 'deploy@127.0.0.1', 'rm -rf /tmp/gatehouse-nothing-here']);
    t.equal(r.code, 126);
    t.match(r.stderr, /gatehouse: denied by rule "no-rm"/);
    // Hidden inside a compound line, a substitution, sh -c, or behind sudo: still seen.
    for (const cmd of ['true && rm -rf /tmp/x', 'echo $(rm -rf /tmp/x)', "sh -c 'rm -rf /tmp/x'", 'sudo -u nobody rm -rf /tmp/x', `/bin/r"m" -r''f /tmp/x`, 'shutdown -h now']) {
      const d = await runClient('ssh', [...g.opts(), 'deploy@127.0.0.1', cmd]);
      t.equal(d.code, 126, `refused: ${cmd}`);
    }
    // One connection, several channels: refused, then allowed.
    const c = await ssh2Connect(g, { privateKey: (await import('node:fs')).readFileSync(g.caller.path) });
    t.teardown(() => c.end());
    const denied = await ssh2Exec(c, 'rm -rf /tmp/gatehouse-nothing-here');
    t.equal(denied.code, 126);
    t.match(denied.stderr, /denied by rule "no-rm"/);
    const after = await ssh2Exec(c, 'echo still-here');
    t.equal(after.code, 0);
    t.equal(after.stdout, 'still-here\n');
    const refused = await eventually(() => g.events('unit').find((e) => e.unit?.text === 'rm -rf /tmp/gatehouse-nothing-here' && e.decision?.action === 'deny'));
    t.match(refused, { decision: { rule: 'no-rm' }, result: { status: 126 } });
  });

  t.test('a review rule refuses the shell with a message naming the rule', async (t) => {
    const r = await runClient('ssh', [...g.opts(), '-tt', 'deploy@127.0.0.1'], { input: 'exit\n' });
    t.not(r.code, 0);
    t.match(r.stdout + r.stderr, /requires approval by rule "shells-reviewed"/);
  });

  t.test('the token is the password (ssh2 client)', async (t) => {
    const c = await ssh2Connect(g, { password: TOKENS.admin, username: 'ci-runner' });
    const r = await ssh2Exec(c, 'echo token-login');
    c.end();
    t.equal(r.stdout, 'token-login\n');
    const start = await eventually(() => g.events('session.start').find((e) => e.identity?.subject === 'svc:ci'));
    t.match(start.meta, { auth: 'password', claimedUser: 'ci-runner' });
  });

  t.test('refused logins: an unknown key, a wrong token, an identity not allowed', async (t) => {
    const unknown = await runClient('ssh', [...g.opts({ identity: sshd.gatewayKey.path }), 'deploy@127.0.0.1', 'true']);
    t.equal(unknown.code, 255);
    t.match(unknown.stderr, /Permission denied/);
    await t.rejects(ssh2Connect(g, { password: 'not-a-token-at-all-xxxx' }));
    await t.rejects(ssh2Connect(g, { password: TOKENS.billing }), 'svc:billing is not in the allow list');
    const failures = await eventually(() => {
      const f = g.events('auth.failure');
      return f.some((e) => (e.meta as { code?: string }).code === 'auth.forbidden') && f.some((e) => (e.meta as { code?: string }).code === 'auth.invalid') ? f : null;
    });
    t.ok(failures.length >= 2);
    t.notOk(
      g.events('auth.failure').some((e) => (e.meta as { ssh?: unknown }).ssh !== undefined && (e.meta as { code?: string }).code === 'auth.ssh_key'),
      'an unknown key only offered (never signed) is not an audited failure',
    );
  });

  t.test('agent and X11 forwarding are refused and audited', async (t) => {
    const { readFileSync } = await import('node:fs');
    const c = await ssh2Connect(g, { privateKey: readFileSync(g.caller.path), agent: '/tmp/gatehouse-no-agent' });
    t.teardown(() => c.end());
    const x11 = await new Promise<Error | undefined>((resolve) => c.exec('echo x', { x11: true }, (e, ch) => (e ? resolve(e) : (ch.close(), resolve(undefined)))));
    t.ok(x11, 'x11-req refused');
    const agent = await new Promise<Error | undefined>((resolve) =>
      c.exec('echo x', { agentForward: true } as unknown as { x11: false }, (e, ch) => (e ? resolve(e) : (ch.close(), resolve(undefined)))),
    );
    t.ok(agent, 'auth-agent-req refused');
    const ok = await ssh2Exec(c, 'echo ok');
    t.equal(ok.stdout, 'ok\n', 'the connection goes on');
    const refused = await eventually(() => {
      const u = g.events('unit').filter((e) => e.decision?.action === 'deny');
      return u.some((e) => e.decision?.rule === 'agent-forwarding') && u.some((e) => e.decision?.rule === 'x11-forwarding') ? u : null;
    });
    t.ok(refused);
  });
}
