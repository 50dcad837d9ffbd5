/**
 * The SSH connector in process, against a scripted target (an ssh2 server playing sshd):
 * login with a token, the target's host key checked (mismatch, unknown, trust on first use),
 * exec (output, stderr, exit status, stdin, a refusal with 126), shell with a pty and window
 * changes, signals, SFTP packets judged and followed, scp per file, direct-tcpip by rule,
 * agent/X11/remote forwarding refused, idle timeout, login timeout, failed-login limit, and
 * shutdown recording what was open. The real OpenSSH tests are in test/e2e/ssh.
 */
import t from 'tap';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Server as NetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2, { type ClientChannel, type ServerChannel } from 'ssh2';
import { MemoryAudit } from '@gatehouse/connector-kit/testing';
import { ok, err, Session, silentLogger, type Identity, type SessionServices, type RuleConfig } from '@gatehouse/core';
import { compilePolicy } from '@gatehouse/policy';
import { compileMasking } from '@gatehouse/masking';
import { createSshConnector, FXP, generateEd25519, type SshConnectorConfig } from '@gatehouse/connector-ssh';

const TOKEN = 'tok-deploy-0123456789';
const IDENTITY: Identity = { subject: 'svc:deploy', issuer: 'static', groups: ['deployers'], claims: {} };

/** A scripted target: exec/shell/sftp/scp answers, direct-tcpip to a local echo server. */
async function startTarget(gatewayPub: string) {
  const host = generateEd25519('test');
  const seen: string[] = [];
  const server = new ssh2.Server({ hostKeys: [host.private] }, (client) => {
    client.on('authentication', (ctx) => {
      if (ctx.method === 'publickey' && ctx.key.data.equals(Buffer.from(gatewayPub.split(' ')[1], 'base64'))) return ctx.accept();
      ctx.reject(['publickey']);
    });
    client.on('ready', () => {
      client.on('session', (accept) => {
        const s = accept();
        s.on('pty', (a) => a?.());
        s.on('env', (a) => a?.());
        let sig: ServerChannel | null = null;
        s.on('signal', (_a, _r, info: { name: string }) => {
          seen.push(`signal ${info.name}`);
          sig?.exit(info.name, false, 'killed');
          sig?.end();
        });
        s.on('window-change', (a, _r, info: { cols: number; rows: number }) => {
          seen.push(`window ${info.cols}x${info.rows}`);
          a?.();
        });
        s.on('shell', (a) => {
          const ch = a();
          ch.write('$ ');
          ch.on('data', (d: Buffer) => {
            const line = d.toString().trim();
            if (line === 'exit') {
              ch.exit(5);
              ch.end();
            } else ch.write(`you said ${line}\r\n$ `);
          });
        });
        s.on('exec', (a, _r, info: { command: string }) => {
          const ch = a();
          seen.push(`exec ${info.command}`);
          if (info.command === 'cat') {
            ch.pipe(ch, { end: false });
            ch.on('end', () => {
              ch.exit(0);
              ch.end();
            });
            return;
          }
          if (info.command === 'sleep') {
            sig = ch;
            return;
          }
          if (info.command.startsWith('scp -t')) {
            // Sink: ack everything, count file bytes.
            ch.write(Buffer.from([0]));
            ch.on('data', () => ch.write(Buffer.from([0])));
            ch.on('end', () => {
              ch.exit(0);
              ch.end();
            });
            return;
          }
          ch.write(`ran: ${info.command}\n`);
          ch.stderr.write('to stderr\n');
          ch.exit(info.command.includes('fail') ? 3 : 0);
          ch.end();
        });
        s.on('subsystem', (a, _r, info: { name: string }) => {
          const ch = a();
          seen.push(`subsystem ${info.name}`);
          // A minimal SFTP server: VERSION, HANDLE for OPEN, STATUS OK for the rest.
          let buf = Buffer.alloc(0);
          ch.on('end', () => {
            ch.exit(0);
            ch.end();
          });
          ch.on('data', (d: Buffer) => {
            buf = Buffer.concat([buf, d]);
            while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
              const p = buf.subarray(4, 4 + buf.readUInt32BE(0));
              buf = buf.subarray(4 + p.length);
              const type = p[0];
              if (type === FXP.INIT) ch.write(pkt(FXP.VERSION, 3));
              else if (type === FXP.OPEN) ch.write(pkt(FXP.HANDLE, p.readUInt32BE(1), Buffer.from('H')));
              else ch.write(pkt(FXP.STATUS, p.readUInt32BE(1), 0, '', ''));
              seen.push(`sftp ${type}`);
            }
          });
        });
      });
      client.on('tcpip', (accept, _reject, info) => {
        seen.push(`tcpip ${info.destIP}:${info.destPort}`);
        const ch = accept();
        ch.pipe(ch);
      });
    });
    client.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return { port, hostPub: host.public, seen, close: () => new Promise<void>((r) => server.close(() => r())) };
}

function pkt(type: number, ...fields: (number | string | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from([type])];
  for (const f of fields) {
    if (typeof f === 'number') {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(f);
      parts.push(b);
    } else {
      const v = Buffer.isBuffer(f) ? f : Buffer.from(f);
      const n = Buffer.alloc(4);
      n.writeUInt32BE(v.length);
      parts.push(n, v);
    }
  }
  const body = Buffer.concat(parts);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  return Buffer.concat([len, body]);
}

interface Harness {
  port: number;
  audit: MemoryAudit;
  dataDir: string;
  stop(): Promise<void>;
}

const RULES: RuleConfig[] = [
  { name: 'no-rm', match: { command: ['rm -rf *'] }, action: 'deny' },
  { name: 'no-secret-files', match: { path: ['/secret/**'] }, action: 'deny' },
  { name: 'echo-tunnel', match: { channel: ['direct-tcpip'], command: ['direct-tcpip 127.0.0.1:*'] }, action: 'allow' },
];

async function startGatewayFor(
  target: { port: number; hostPub: string },
  key: { private: string },
  o: { knownHosts?: string; tofu?: boolean; extra?: Partial<SshConnectorConfig>; dataDir?: string; rules?: RuleConfig[] } = {},
): Promise<Harness> {
  const dataDir = o.dataDir ?? mkdtempSync(join(tmpdir(), 'gh-ssh-unit-'));
  const audit = new MemoryAudit();
  const policy = compilePolicy(o.rules ?? RULES, { connectorType: 'ssh' });
  const masking = compileMasking([{ detectors: ['credit_card'], with: 'last4' }], { hashKey: Buffer.alloc(32) });
  if (!policy.ok || !masking.ok) throw new Error('compile');
  const config: SshConnectorConfig = {
    name: 'unit',
    type: 'ssh',
    listen: '127.0.0.1:0',
    allow: [{ groups: ['deployers'] }],
    rules: [],
    masking: [],
    host_key: 'data_dir',
    upstream: {
      address: `127.0.0.1:${target.port}`,
      user: 'deploy',
      private_key: key.private,
      ...(o.knownHosts !== undefined || !o.tofu ? { known_hosts: o.knownHosts ?? `[127.0.0.1]:${target.port} ${target.hostPub}\n` } : {}),
      trust_on_first_use: o.tofu ?? false,
      connect_timeout: 5000,
    },
    recording: { input: false, max_bytes: '1MB' },
    idle_timeout: 60_000,
    keepalive_interval: 0,
    login_timeout: 5000,
    max_auth_failures: 3,
    auth_failure_window: 60_000,
    max_channels: 10,
    ...o.extra,
  };
  const services: SessionServices = {
    connector: { name: 'unit', type: 'ssh' },
    allow: config.allow,
    audit,
    authenticator: { authenticate: (tok: string) => Promise.resolve(tok === TOKEN ? ok(IDENTITY) : err('auth.invalid', 'token is not recognised')) },
    policy: policy.value,
    masking: masking.value,
    recorder: null,
    metrics: null,
    logger: silentLogger,
  };
  const connector = createSshConnector({ config, dataDir, logger: silentLogger, openSession: (peer) => new Session(services, peer) });
  const bound = await connector.start();
  const port = Number(bound.slice(bound.lastIndexOf(':') + 1));
  return {
    port,
    audit,
    dataDir,
    async stop() {
      await connector.stop(200);
      if (!o.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

function login(port: number, password = TOKEN): Promise<ssh2.Client> {
  return new Promise((resolve, reject) => {
    const c = new ssh2.Client();
    c.once('ready', () => resolve(c));
    c.once('error', reject);
    c.connect({ host: '127.0.0.1', port, username: 'someone', password, hostVerifier: () => true, readyTimeout: 5000 });
  });
}

function exec(c: ssh2.Client, cmd: string, input?: string): Promise<{ code: number | null; signal?: string; out: string; err: string }> {
  return new Promise((resolve, reject) =>
    c.exec(cmd, (e, ch) => {
      if (e) return reject(e);
      let out = '';
      let errOut = '';
      let code: number | null = null;
      let signal: string | undefined;
      ch.on('data', (d: Buffer) => (out += d.toString()));
      ch.stderr.on('data', (d: Buffer) => (errOut += d.toString()));
      ch.on('exit', (x: number | null, s?: string) => ((code = x), (signal = s)));
      ch.on('close', () => resolve({ code, ...(signal ? { signal } : {}), out, err: errOut }));
      if (input !== undefined) ch.end(input);
    }),
  );
}

const settle = () => new Promise((r) => setTimeout(r, 150));

t.test('the connector against a scripted target', async (t) => {
  const gwKey = generateEd25519('test');
  const target = await startTarget(gwKey.public);
  t.teardown(() => target.close());
  const echo: NetServer = createServer((s) => s.pipe(s));
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  t.teardown(() => echo.close());
  const echoPort = (echo.address() as AddressInfo).port;
  const g = await startGatewayFor(target, gwKey);
  t.teardown(() => g.stop());
  const c = await login(g.port);
  t.teardown(() => c.end());

  t.test('exec: output, stderr, exit status; stdin; a refusal', async (t) => {
    t.same(await exec(c, 'uptime'), { code: 0, out: 'ran: uptime\n', err: 'to stderr\n' });
    t.match(await exec(c, 'make fail'), { code: 3 });
    t.match(await exec(c, 'cat', 'hello through'), { code: 0, out: 'hello through' });
    const denied = await exec(c, 'rm -rf /srv');
    t.match(denied, { code: 126, err: /denied by rule "no-rm"/ });
    t.notOk(target.seen.includes('exec rm -rf /srv'), 'never reached the target');
    await settle();
    const units = g.audit.units();
    t.match(
      units.find((e) => e.unit?.text === 'uptime'),
      { decision: { action: 'allow' }, result: { status: 0 }, unit: { attributes: { channel: 'exec', recording: { sha256: /^[0-9a-f]{64}$/ } } } },
    );
    const rec = (units.find((e) => e.unit?.text === 'uptime')!.unit!.attributes as { recording: { file: string; sha256: string } }).recording;
    t.equal(
      createHash('sha256')
        .update(readFileSync(join(g.dataDir, 'recordings', rec.file)))
        .digest('hex'),
      rec.sha256,
    );
    t.match(
      units.find((e) => e.unit?.text === 'rm -rf /srv'),
      { decision: { action: 'deny', rule: 'no-rm' }, result: { status: 126 } },
    );
  });

  t.test('shell with a pty: window change reaches the target, exit status comes back', async (t) => {
    const ch = await new Promise<ClientChannel>((resolve, reject) => c.shell({ rows: 24, cols: 80, term: 'xterm' }, (e, x) => (e ? reject(e) : resolve(x))));
    let out = '';
    ch.on('data', (d: Buffer) => (out += d.toString()));
    const exit = new Promise<number | null>((r) => ch.on('exit', (x: number | null) => r(x)));
    ch.write('hello\n');
    await settle();
    ch.setWindow(30, 100, 0, 0);
    await settle();
    ch.write('exit\n');
    t.equal(await exit, 5);
    t.match(out, /you said hello/);
    t.ok(target.seen.includes('window 100x30'), JSON.stringify(target.seen));
  });

  t.test('signals pass through; the exit signal comes back', async (t) => {
    const ch = await new Promise<ClientChannel>((resolve, reject) => c.exec('sleep', (e, x) => (e ? reject(e) : resolve(x))));
    const exit = new Promise<unknown[]>((r) => ch.on('exit', (...a: unknown[]) => r(a)));
    ch.on('data', () => {});
    await settle();
    ch.signal('TERM');
    const [code, signal] = await exit;
    t.equal(code, null);
    t.equal(signal, 'SIGTERM');
  });

  t.test('sftp packets: judged and followed; a refusal is answered by the gateway', async (t) => {
    const ch = await new Promise<ClientChannel>((resolve, reject) => c.subsys('sftp', (e, x) => (e ? reject(e) : resolve(x))));
    let got = Buffer.alloc(0);
    ch.on('data', (d: Buffer) => (got = Buffer.concat([got, d])));
    ch.write(pkt(FXP.INIT, 3));
    ch.write(pkt(FXP.OPEN, 1, '/srv/file.txt', 2 | 8, 0));
    ch.write(Buffer.concat([pkt(FXP.WRITE, 2, Buffer.from('H'), 0, 0, 'abc').subarray(0)]));
    ch.write(pkt(FXP.CLOSE, 3, Buffer.from('H')));
    ch.write(pkt(FXP.OPEN, 4, '/secret/keys', 1, 0));
    await settle();
    ch.end();
    await new Promise((r) => ch.on('close', r));
    t.ok(got.includes(Buffer.from('gatehouse: denied by rule "no-secret-files"')), 'the refusal came from the gateway');
    t.notOk(target.seen.includes(`sftp ${FXP.OPEN}`) && target.seen.filter((x) => x === `sftp ${FXP.OPEN}`).length > 1, 'the refused OPEN never reached the target');
    await settle();
    const units = g.audit.units();
    t.ok(units.find((e) => e.unit?.text === 'sftp read /secret/keys' && e.decision?.action === 'deny'));
    t.ok(units.find((e) => (e.unit?.attributes as { transfer?: { path?: string } } | undefined)?.transfer?.path === '/srv/file.txt'));
    t.ok(units.find((e) => e.unit?.text === 'subsystem sftp'));
  });

  t.test('scp: each file judged and audited', async (t) => {
    const ch = await new Promise<ClientChannel>((resolve, reject) => c.exec('scp -t /srv/drop', (e, x) => (e ? reject(e) : resolve(x))));
    ch.on('data', () => {});
    const closed = new Promise((r) => ch.on('close', r));
    ch.write('C0644 5 hello.txt\n');
    ch.write('world');
    ch.write(Buffer.from([0]));
    ch.end();
    await closed;
    await settle();
    const tr = g.audit.units().find((e) => (e.unit?.attributes as { transfer?: { path?: string } } | undefined)?.transfer?.path === '/srv/drop');
    t.match(tr?.unit?.attributes, { transfer: { path: '/srv/drop', name: 'hello.txt', size: 5, sha256: createHash('sha256').update('world').digest('hex'), complete: true } });
    const ch2 = await new Promise<ClientChannel>((resolve, reject) => c.exec('scp -t /secret/x', (e, x) => (e ? reject(e) : resolve(x))));
    ch2.end();
    let err2 = '';
    ch2.stderr.on('data', (d: Buffer) => (err2 += d.toString()));
    ch2.on('data', () => {});
    await new Promise((r) => ch2.on('close', r));
    t.match(err2, /no-secret-files/);
  });

  t.test('direct-tcpip by rule; forwarding and agent requests refused', async (t) => {
    const up = await new Promise<ClientChannel>((resolve, reject) => c.forwardOut('127.0.0.1', 1, '127.0.0.1', echoPort, (e, x) => (e ? reject(e) : resolve(x))));
    const back = new Promise<string>((r) => up.once('data', (d: Buffer) => r(d.toString())));
    up.write('ping');
    t.equal(await back, 'ping');
    up.end();
    await new Promise((r) => up.on('close', r));
    await t.rejects(new Promise((resolve, reject) => c.forwardOut('127.0.0.1', 1, '10.9.9.9', 22, (e, x) => (e ? reject(e) : resolve(x)))));
    await t.rejects(new Promise((resolve, reject) => c.forwardIn('127.0.0.1', 0, (e, p) => (e ? reject(e) : resolve(p)))));
    await t.rejects(new Promise((resolve, reject) => c.exec('uptime', { x11: true }, (e, x) => (e ? reject(e) : resolve(x)))));
    await settle();
    const u = g.audit.units();
    t.match(
      u.find((e) => e.unit?.text === `direct-tcpip 127.0.0.1:${echoPort}`),
      { decision: { rule: 'echo-tunnel' }, unit: { attributes: { bytes_to_target: 4, bytes_to_caller: 4 } } },
    );
    t.ok(u.find((e) => e.decision?.rule === 'forwarding-off'));
    t.ok(u.find((e) => e.decision?.rule === 'remote-forwarding'));
    t.ok(u.find((e) => e.decision?.rule === 'x11-forwarding'));
  });
});

t.test('target host keys: mismatch and unknown refused with a message; trust on first use pins', async (t) => {
  const gwKey = generateEd25519('test');
  const target = await startTarget(gwKey.public);
  t.teardown(() => target.close());
  const other = generateEd25519('test');
  const wrong = await startGatewayFor(target, gwKey, { knownHosts: `[127.0.0.1]:${target.port} ${other.public}\n` });
  t.teardown(() => wrong.stop());
  const c = await login(wrong.port);
  const r = await exec(c, 'uptime');
  t.match(r, { code: 255, err: /REMOTE HOST IDENTIFICATION HAS CHANGED/ });
  c.end();
  await settle();
  t.ok(wrong.audit.events.find((e) => e.kind === 'protocol.error' && (e.meta as { code?: string }).code === 'upstream.host_key'));

  const unknown = await startGatewayFor(target, gwKey, { knownHosts: 'other.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ3G9OaN+xvFMk3eLH+WEhl1Uv3P9IbLLw0dVg676Kq/\n' });
  t.teardown(() => unknown.stop());
  const c2 = await login(unknown.port);
  t.match(await exec(c2, 'uptime'), { code: 255, err: /not in known_hosts/ });
  c2.end();

  const tofu = await startGatewayFor(target, gwKey, { tofu: true });
  t.teardown(() => tofu.stop());
  const c3 = await login(tofu.port);
  t.match(await exec(c3, 'uptime'), { code: 0 });
  c3.end();
  t.ok(existsSync(join(tofu.dataDir, 'ssh', 'known_hosts.unit')));
});

t.test('failed logins are limited per address; idle and login timeouts; shutdown records open channels', async (t) => {
  const gwKey = generateEd25519('test');
  const target = await startTarget(gwKey.public);
  t.teardown(() => target.close());
  const g = await startGatewayFor(target, gwKey, { extra: { idle_timeout: 400, login_timeout: 300 } });
  t.teardown(() => g.stop());
  // A TCP connection that never says anything is dropped at the login deadline…
  const silent = connect(g.port, '127.0.0.1');
  silent.on('error', () => {});
  silent.resume(); // read (and drop) what the gateway sends, so that its close is seen
  await new Promise((r) => silent.on('close', r));
  // …and one that starts SSH but never logs in is dropped and audited.
  const raw = connect(g.port, '127.0.0.1');
  raw.on('error', () => {});
  raw.resume();
  raw.write('SSH-2.0-slow_client\r\n');
  await new Promise((r) => raw.on('close', r));
  await settle();
  t.ok(g.audit.events.find((e) => e.kind === 'protocol.error' && (e.meta as { code?: string }).code === 'ssh.login_timeout'));
  // Idle timeout.
  const c = await login(g.port);
  await new Promise<void>((r) => c.on('close', () => r()));
  await settle();
  t.ok(g.audit.events.find((e) => e.kind === 'session.end' && (e.meta as { reason?: string }).reason === 'idle timeout'));
  // Shutdown with a channel open: its unit is recorded, then session.end.
  const g3 = await startGatewayFor(target, gwKey);
  const c2 = await login(g3.port);
  const ch = await new Promise<ClientChannel>((resolve, reject) => c2.exec('sleep', (e, x) => (e ? reject(e) : resolve(x))));
  ch.on('data', () => {});
  ch.stderr.on('data', () => {});
  while (!target.seen.includes('exec sleep')) await settle();
  await settle();
  await g3.stop();
  t.ok(
    g3.audit.units().find((e) => e.unit?.text === 'sleep' && /gateway shutdown/.test(String(e.result?.error))),
    JSON.stringify(g3.audit.events.slice(-3).map((e) => [e.kind, e.unit?.text, e.result, e.meta])),
  );
  // Failed logins.
  const g2 = await startGatewayFor(target, gwKey);
  t.teardown(() => g2.stop());
  for (let i = 0; i < 3; i++) await t.rejects(login(g2.port, 'wrong-token-xxxxxxxx'));
  await t.rejects(login(g2.port), 'a good token is refused while the address is limited');
  t.ok(g2.audit.events.find((e) => e.kind === 'protocol.error' && (e.meta as { code?: string }).code === 'ssh.rate_limited'));
});
