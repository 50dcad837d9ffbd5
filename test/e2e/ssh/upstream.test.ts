/**
 * The gateway's side of SSH: the target's host key checked against known_hosts (a changed
 * key refuses the session with a clear message and an audit event; trust-on-first-use only
 * when configured, pinned across connections), the gateway's host key kept across restarts,
 * and `direct-tcpip` forwarding — off unless a rule allows it, bytes each way audited.
 */
import t from 'tap';
import { once } from 'node:events';
import { spawn } from 'node:child_process';
import { connect, createServer, type Server } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfig } from '@gatehouse/core';
import { connectorModules, startGateway } from '@gatehouse/gateway';
import { freePort } from '../../lib/net.js';
import { runClient, sshAvailable, startSshd, type Sshd } from './env.js';
import { eventually, ssh2Connect, ssh2Exec, startSshGateway } from './harness.js';

const missing = sshAvailable();
if (missing) {
  t.pass(`skipped: ${missing}`);
} else {
  let sshd: Sshd;
  t.before(async () => {
    sshd = await startSshd();
  });
  t.teardown(async () => {
    await sshd?.stop();
  });

  t.test('a target whose host key changed is refused with a clear message and an audit event', async (t) => {
    const g = await startSshGateway(sshd);
    t.teardown(() => g.stop());
    const ok = await runClient('ssh', [...g.opts(), 'deploy@127.0.0.1', 'echo before']);
    t.equal(ok.stdout, 'before\n', ok.stderr);
    await sshd.rotateHostKey();
    const r = await runClient('ssh', [...g.opts(), 'deploy@127.0.0.1', 'echo after']);
    t.equal(r.code, 255);
    t.notMatch(r.stdout, /after/);
    t.match(r.stderr, /REMOTE HOST IDENTIFICATION HAS CHANGED: \[127\.0\.0\.1\]:\d+ presented ssh-ed25519 SHA256:/);
    const ev = await eventually(() => g.events('protocol.error').find((e) => (e.meta as { code?: string }).code === 'upstream.host_key'));
    t.match(ev.meta, { upstream: `127.0.0.1:${sshd.port}`, presentedKey: { type: 'ssh-ed25519', fingerprint: /^SHA256:/ } });
    const unit = await eventually(() => g.events('unit').find((e) => e.unit?.text === 'echo after'));
    t.match(unit, { result: { status: 255, error: /HOST IDENTIFICATION HAS CHANGED/ } });
  });

  t.test('a target not in known_hosts is refused; trust_on_first_use pins the first key', async (t) => {
    const strict = await startSshGateway(sshd, { knownHosts: '# nothing here\n' });
    t.teardown(() => strict.stop());
    const r = await runClient('ssh', [...strict.opts(), 'deploy@127.0.0.1', 'echo x']);
    t.equal(r.code, 255);
    t.match(r.stderr, /is not in known_hosts/);

    const tofu = await startSshGateway(sshd, { knownHosts: '', upstreamExtra: ', trust_on_first_use: true' });
    t.teardown(() => tofu.stop());
    const first = await runClient('ssh', [...tofu.opts(), 'deploy@127.0.0.1', 'echo first']);
    t.equal(first.stdout, 'first\n', first.stderr);
    const pinned = readFileSync(join(tofu.tg.dataDir, 'ssh', 'known_hosts.web-hosts'), 'utf8');
    t.match(pinned, new RegExp(`^\\[127\\.0\\.0\\.1\\]:${sshd.port} ssh-ed25519 `));
    t.ok(await eventually(() => tofu.events('protocol.error').find((e) => (e.meta as { code?: string }).code === 'upstream.host_key_pinned')));
    const second = await runClient('ssh', [...tofu.opts(), 'deploy@127.0.0.1', 'echo second']);
    t.equal(second.stdout, 'second\n');
    await sshd.rotateHostKey();
    const third = await runClient('ssh', [...tofu.opts(), 'deploy@127.0.0.1', 'echo third']);
    t.equal(third.code, 255, 'a pinned key that changes is refused');
    t.match(third.stderr, /HOST IDENTIFICATION HAS CHANGED/);
  });

  t.test("the gateway's host key is created once and kept across restarts", async (t) => {
    const g = await startSshGateway(sshd);
    const before = g.hostPub;
    const dataDir = g.tg.dataDir;
    await g.tg.gw.stop(1000);
    const port = await freePort();
    const parsed = parseConfig(
      `data_dir: ${JSON.stringify(dataDir)}\nadmin: { listen: 127.0.0.1:0 }\nconnectors:\n  - name: again\n    type: ssh\n    listen: 127.0.0.1:${port}\n    upstream: { address: 127.0.0.1:${sshd.port}, user: x, password: x, trust_on_first_use: true }\n`,
      'restart.yaml',
      { connectors: connectorModules },
    );
    if (!parsed.ok) throw new Error(parsed.error.message);
    const gw = await startGateway(parsed.value, { logLevel: 'silent' });
    t.teardown(async () => {
      await gw.stop(1000);
      await g.stop().catch(() => {});
    });
    const after = readFileSync(join(dataDir, 'ssh', 'ssh_host_ed25519_key.pub'), 'utf8')
      .split(' ')
      .slice(0, 2)
      .join(' ');
    t.equal(after, before);
    // And the listener really presents it.
    const presented = await new Promise<string>((resolve, reject) => {
      const c = new (require_ssh2().Client)();
      c.on('error', () => {});
      c.connect({ host: '127.0.0.1', port, username: 'x', hostVerifier: (k: Buffer) => (resolve(k.toString('base64')), false) });
      setTimeout(() => reject(new Error('no host key')), 5000).unref();
    });
    t.equal(presented, before.split(' ')[1]);
  });

  t.test('direct-tcpip: off unless a rule allows it; bytes each way audited', async (t) => {
    const echo: Server = createServer((s) => s.pipe(s));
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    t.teardown(() => echo.close());
    const echoPort = (echo.address() as { port: number }).port;
    const g = await startSshGateway(sshd, {
      rules: `      - { name: db-tunnel, match: { channel: [direct-tcpip], command: ["direct-tcpip 127.0.0.1:${echoPort}"] }, action: allow }`,
    });
    t.teardown(() => g.stop());
    const c = await ssh2Connect(g, { privateKey: readFileSync(g.caller.path) });
    t.teardown(() => c.end());
    // Another port: no rule allows it, so the default (allow) does not count.
    const other = await freePort();
    const refused = await new Promise<Error | null>((resolve) => c.forwardOut('127.0.0.1', 5555, '127.0.0.1', other, (e, ch) => (e ? resolve(e) : (ch.close(), resolve(null)))));
    t.ok(refused, 'forwarding to a port no rule allows is refused');
    const deny = await eventually(() => g.events('unit').find((e) => e.unit?.text === `direct-tcpip 127.0.0.1:${other}`));
    t.match(deny, { decision: { action: 'deny', rule: 'forwarding-off' } });

    // The real ssh client: -L through the gateway to the echo server.
    const local = await freePort();
    const tunnel = spawn('ssh', [...g.opts(), '-N', '-o', 'ExitOnForwardFailure=yes', '-L', `127.0.0.1:${local}:127.0.0.1:${echoPort}`, 'deploy@127.0.0.1'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let tunnelErr = '';
    tunnel.stderr.on('data', (d: Buffer) => (tunnelErr += d.toString()));
    t.teardown(() => tunnel.kill());
    const payload = Buffer.alloc(1_000_000, 7);
    let echoed = 0;
    for (let i = 0; ; i++) {
      try {
        const s = connect(local, '127.0.0.1');
        await once(s, 'connect');
        s.on('data', (d: Buffer) => {
          echoed += d.length;
          if (echoed >= payload.length) s.end();
        });
        s.write(payload);
        await once(s, 'close');
        break;
      } catch (e) {
        if (i > 50) throw new Error(`${(e as Error).message}; ssh said: ${tunnelErr}`, { cause: e });
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    t.equal(echoed, payload.length, 'the echo came back whole through the tunnel');
    tunnel.kill();
    const unit = await eventually(() => g.events('unit').find((e) => e.unit?.text === `direct-tcpip 127.0.0.1:${echoPort}` && e.decision?.action === 'allow'), 10_000);
    t.match(unit, { decision: { rule: 'db-tunnel' }, unit: { attributes: { bytes_to_target: payload.length, bytes_to_caller: payload.length } } });
    // Exec still works on a connection that forwards.
    t.equal((await ssh2Exec(c, 'echo fine')).stdout, 'fine\n');
  });
}

import { createRequire } from 'node:module';
const require_ssh2 = () => createRequire(import.meta.url)('ssh2') as typeof import('ssh2');
