/**
 * Caller authentication on the SSH connector with certificates made by `ssh-keygen -s`:
 * a valid OpenSSH user certificate (principals[0] is the subject, the rest groups), one
 * outside its validity window (expired, not yet valid), one from another CA, one with an
 * unknown critical option, `source-address` and `force-command` honoured, `no-pty`; and
 * failed logins rate-limited per source address.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { TOKENS } from '../../lib/gateway.js';
import { keygen, runClient, signCert, sshAvailable, startSshd, type KeyPair, type Sshd } from './env.js';
import { eventually, ssh2Connect, startSshGateway, type SshGateway } from './harness.js';

const missing = sshAvailable();
if (missing) {
  t.pass(`skipped: ${missing}`);
} else {
  let sshd: Sshd;
  let g: SshGateway;
  let ca: KeyPair;
  let other: KeyPair;
  t.before(async () => {
    sshd = await startSshd();
    ca = await keygen(sshd.dir, 'user_ca', 'ed25519', 'gatehouse test ca');
    other = await keygen(sshd.dir, 'other_ca');
    g = await startSshGateway(sshd, {
      identityExtra: `  ssh_user_ca:\n    - { key: "${ca.pub}", groups_from: principals }`,
      rules: `      - { name: no-rm, match: { command: ["rm -rf *"] }, action: deny }`,
      connectorExtra: '    max_auth_failures: 100',
    });
  });
  t.teardown(async () => {
    await g?.stop();
    await sshd?.stop();
  });

  const certFor = async (name: string, o: Parameters<typeof signCert>[2], signer = ca) => {
    const key = await keygen(g.dir, name);
    return { key, cert: await signCert(signer, key, o) };
  };
  const sshWith = (k: { key: KeyPair; cert: string }, cmd: string, extra: string[] = []) =>
    runClient('ssh', [...g.opts({ identity: k.key.path, cert: k.cert }), ...extra, 'deploy@127.0.0.1', cmd]);

  t.test('a valid certificate: principals[0] is the subject, the others are groups; serial in the audit', async (t) => {
    const k = await certFor('good', { id: 'deploy-bot-2025', principals: ['svc:cert-bot', 'deployers'], validity: '-5m:+1h', serial: 4242 });
    const r = await sshWith(k, 'echo certified');
    t.equal(r.code, 0, r.stderr);
    t.equal(r.stdout, 'certified\n');
    const start = await eventually(() => g.events('session.start').find((e) => e.identity?.subject === 'svc:cert-bot'));
    t.match(start, {
      identity: { issuer: 'ssh-cert', groups: ['deployers'] },
      meta: { auth: 'certificate', ssh: { method: 'certificate', serial: '4242', keyId: 'deploy-bot-2025', ca: /^SHA256:/, fingerprint: /^SHA256:/ } },
    });
  });

  t.test('certificates refused: expired, not yet valid, another CA, unknown critical option, source-address', async (t) => {
    const cases: [string, Parameters<typeof signCert>[2], KeyPair | undefined, string][] = [
      ['expired', { id: 'old', principals: ['svc:cert-bot', 'deployers'], validity: '20200101:20200102' }, undefined, 'auth.expired'],
      ['future', { id: 'future', principals: ['svc:cert-bot', 'deployers'], validity: '+1d:+2d' }, undefined, 'auth.not_yet_valid'],
      ['foreign', { id: 'foreign', principals: ['svc:cert-bot', 'deployers'], validity: '-5m:+1h' }, other, 'auth.ssh_key'],
      [
        'critical',
        { id: 'critical', principals: ['svc:cert-bot', 'deployers'], validity: '-5m:+1h', options: ['critical:verify-something@example.com=yes'] },
        undefined,
        'auth.ssh_key',
      ],
      ['elsewhere', { id: 'elsewhere', principals: ['svc:cert-bot', 'deployers'], validity: '-5m:+1h', options: ['source-address=10.0.0.0/8'] }, undefined, 'auth.ssh_key'],
    ];
    for (const [name, o, signer, code] of cases) {
      const k = await certFor(name, o, signer ?? ca);
      const r = await sshWith(k, 'echo should-not-run');
      t.equal(r.code, 255, `${name}: refused`);
      t.notMatch(r.stdout, /should-not-run/);
      // OpenSSH only offers a certificate it considers valid itself; the gateway still checks.
      if (name === 'expired' || name === 'future') continue;
      const f = await eventually(() =>
        g.events('auth.failure').find((e) => (e.meta as { code?: string }).code === code && (e.meta as { ssh?: { method?: string } }).ssh?.method === 'certificate'),
      );
      t.ok(f, `${name}: audited as ${code}`);
    }
    const reasons = g.events('auth.failure').map((e) => String((e.meta as { reason?: string }).reason));
    t.ok(
      reasons.some((x) => /critical option .*verify-something@example.com/.test(x)),
      JSON.stringify(reasons),
    );
    t.ok(reasons.some((x) => /source-address/.test(x)));
  });

  t.test('expired and not-yet-valid certificates are refused by the gateway itself (ssh2 client offers them)', async (t) => {
    for (const [name, validity, code] of [
      ['expired2', '20200101:20200102', 'auth.expired'],
      ['future2', '+1d:+2d', 'auth.not_yet_valid'],
    ] as const) {
      const k = await certFor(name, { id: name, principals: ['svc:cert-bot', 'deployers'], validity });
      const certLine = readFileSync(k.cert, 'utf8').trim();
      const privateKey = readFileSync(k.key.path);
      // ssh2's client signs with the key but presents the certificate via a custom authHandler.
      await t.rejects(
        ssh2Connect(g, {
          authHandler: [{ type: 'publickey', username: 'deploy', key: certKey(privateKey, certLine) } as never],
        }),
        `${name} refused`,
      );
      t.ok(await eventually(() => g.events('auth.failure').find((e) => (e.meta as { code?: string }).code === code)), `${name}: ${code}`);
    }
  });

  t.test('force-command replaces what the caller asks for; no-pty refuses a pty', async (t) => {
    const k = await certFor('forced', { id: 'forced', principals: ['svc:forced', 'deployers'], validity: '-5m:+1h', options: ['force-command=echo forced-output', 'no-pty'] });
    const r = await sshWith(k, 'echo what-i-asked');
    t.equal(r.code, 0, r.stderr);
    t.equal(r.stdout, 'forced-output\n');
    const unit = await eventually(() => g.events('unit').find((e) => e.identity?.subject === 'svc:forced' && e.unit?.text === 'echo forced-output'));
    t.match(unit.unit?.attributes, { forced_command: 'echo forced-output', requested: 'echo what-i-asked' });
    const tty = await sshWith(k, 'tty', ['-tt']);
    t.match(tty.stdout + tty.stderr, /forced-output|PTY allocation request failed/);
  });

  t.test('failed logins from one address are rate-limited', async (t) => {
    const g = await startSshGateway(sshd, { connectorExtra: '    max_auth_failures: 3\n    auth_failure_window: 1m' });
    t.teardown(() => g.stop());
    for (let i = 0; i < 3; i++) await t.rejects(ssh2Connect(g, { password: `wrong-token-${i}-xxxxxxxxxxxx` }));
    // Now even a good credential from this address is refused for a while.
    await t.rejects(ssh2Connect(g, { password: TOKENS.admin }), 'refused while limited');
    const r = await runClient('ssh', [...g.opts(), 'deploy@127.0.0.1', 'echo x']);
    t.equal(r.code, 255);
    const ev = await eventually(() => g.events('protocol.error').find((e) => (e.meta as { code?: string }).code === 'ssh.rate_limited'));
    t.match(ev.meta, { max: 3 });
  });
}

/**
 * A parsed private key for ssh2's client that signs as usual but presents `certLine` as its
 * public key (ssh2's client has no certificate support of its own).
 */
function certKey(privateKey: Buffer, certLine: string) {
  const ssh2 = createRequire(import.meta.url)('ssh2') as typeof import('ssh2');
  const parsed = ssh2.utils.parseKey(privateKey) as unknown as { type: string; getPublicSSH(): Buffer };
  const [type, b64] = certLine.split(' ') as [string, string];
  parsed.type = type;
  parsed.getPublicSSH = () => Buffer.from(b64, 'base64');
  return parsed;
}

import { createRequire } from 'node:module';
