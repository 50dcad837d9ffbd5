/**
 * SSH keys and OpenSSH certificates: the wire parser against certificates made by the real
 * `ssh-keygen -s` (ed25519, ECDSA and RSA keys and CAs), signature checks, and every refusal
 * of `identity.ssh_keys` / `identity.ssh_user_ca` mapping: wrong CA, host certificate,
 * validity window, no principal, unknown critical option, source-address; force-command
 * handed over as a claim; malformed blobs refused, never half-read.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { createPrivateKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { silentLogger, type SshKeyCredential } from '@gatehouse/core';
import { createAuthenticator, parseCertificate, parsePublicKeyLine, sourceAllowed, sshFingerprint, SshKeyIdentities, SshWireError, type IdentityConfig } from '@gatehouse/identity';

const run = promisify(execFile);
const haveKeygen = existsSync('/usr/bin/ssh-keygen');

const str = (b: Buffer | string) => {
  const v = Buffer.isBuffer(b) ? b : Buffer.from(b);
  const n = Buffer.alloc(4);
  n.writeUInt32BE(v.length);
  return Buffer.concat([n, v]);
};

/** A caller key made by node (so the test can sign with it), with its OpenSSH public line. */
function ed25519(): { priv: KeyObject; blob: Buffer; line: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url');
  const blob = Buffer.concat([str('ssh-ed25519'), str(raw)]);
  return { priv: privateKey, blob, line: `ssh-ed25519 ${blob.toString('base64')} test` };
}

const wireSig = (algo: string, sig: Buffer) => Buffer.concat([str(algo), str(sig)]);

t.test('malformed blobs are refused whole', async (t) => {
  const k = ed25519();
  t.throws(() => parsePublicKeyLine(`ssh-ed25519 ${k.blob.subarray(0, 20).toString('base64')}`), SshWireError);
  t.throws(() => parsePublicKeyLine(`ssh-ed25519 ${Buffer.concat([k.blob, Buffer.from([0])]).toString('base64')}`), /trailing/);
  t.throws(() => parsePublicKeyLine(`ssh-rsa ${k.blob.toString('base64')}`), /does not match/);
  t.throws(() => parseCertificate(k.blob), /unsupported certificate type/);
  t.throws(() => parseCertificate(Buffer.concat([str('ssh-ed25519-cert-v01@openssh.com'), str('nonce')])), SshWireError);
  t.equal(sshFingerprint(k.blob).startsWith('SHA256:'), true);
});

t.test('source-address lists', async (t) => {
  t.ok(sourceAllowed('10.0.0.0/8,127.0.0.1', '127.0.0.1'));
  t.ok(sourceAllowed('127.0.0.0/8', '::ffff:127.0.0.5'));
  t.notOk(sourceAllowed('10.0.0.0/8', '127.0.0.1'));
  t.ok(sourceAllowed('::1/128', '::1'));
  t.throws(() => sourceAllowed('not-an-address', '127.0.0.1'));
  t.throws(() => sourceAllowed('10.0.0.0/99', '10.0.0.1'));
});

t.test('a bound key: query, signed proof, wrong signature, unbound key', async (t) => {
  const k = ed25519();
  const other = ed25519();
  const ids = new SshKeyIdentities([{ key: k.line, subject: 'svc:deploy', groups: ['deployers'] }], [], silentLogger);
  const data = Buffer.from('session-id and request');
  const cred = (blob: Buffer, sig: Buffer | null): SshKeyCredential => ({
    algo: 'ssh-ed25519',
    blob,
    address: '127.0.0.1',
    proof: sig ? { data, signature: { algorithm: 'ssh-ed25519', bytes: sig } } : null,
  });
  const q = ids.verify(cred(k.blob, null), Date.now() / 1000);
  t.ok(q.ok, 'a query for a bound key is answered yes');
  const good = ids.verify(cred(k.blob, sign(null, data, k.priv)), Date.now() / 1000);
  t.match(good, { ok: true, value: { subject: 'svc:deploy', issuer: 'ssh-key', groups: ['deployers'], claims: { fingerprint: sshFingerprint(k.blob) } } });
  t.match(ids.verify(cred(k.blob, sign(null, Buffer.from('other data'), k.priv)), Date.now() / 1000), { ok: false, error: { code: 'auth.signature' } });
  t.match(ids.verify(cred(k.blob, sign(null, data, other.priv)), Date.now() / 1000), { ok: false, error: { code: 'auth.signature' } });
  t.match(ids.verify(cred(other.blob, sign(null, data, other.priv)), Date.now() / 1000), { ok: false, error: { code: 'auth.ssh_key' } });
  // The wire form of the same signature verifies too.
  const wire: SshKeyCredential = { ...cred(k.blob, null), proof: { data, signature: { wire: wireSig('ssh-ed25519', sign(null, data, k.priv)) } } };
  t.ok(ids.verify(wire, Date.now() / 1000).ok);
  // Through the authenticator, as the gateway wires it.
  const config: IdentityConfig = { oidc: [], static_tokens: [], roles: {}, ssh_keys: [{ key: k.line, subject: 'svc:deploy', groups: [] }] };
  const auth = createAuthenticator(config);
  t.teardown(() => auth.close());
  t.ok((await auth.authenticateSshKey(cred(k.blob, sign(null, data, k.priv)))).ok);
});

t.test('OpenSSH certificates made by ssh-keygen', { skip: haveKeygen ? false : 'ssh-keygen not installed' }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-sshcert-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const keygen = async (name: string, type: string, bits?: string) => {
    await run('ssh-keygen', ['-q', '-t', type, ...(bits ? ['-b', bits] : []), '-N', '', '-C', name, '-f', join(dir, name)]);
    return readFileSync(join(dir, `${name}.pub`), 'utf8').trim();
  };
  const caEd = await keygen('ca-ed', 'ed25519');
  const caEc = await keygen('ca-ec', 'ecdsa', '256');
  const caRsa = await keygen('ca-rsa', 'rsa', '3072');
  const otherCa = await keygen('ca-other', 'ed25519');
  // The caller's key is node's, written as an OpenSSH public key for ssh-keygen to certify.
  const user = ed25519();
  writeFileSync(join(dir, 'user.pub'), `${user.line}\n`);
  let n = 0;
  const certify = async (ca: string, args: string[]) => {
    const name = `user${++n}`;
    writeFileSync(join(dir, `${name}.pub`), `${user.line}\n`);
    await run('ssh-keygen', ['-q', '-s', join(dir, ca), '-I', `id-${n}`, ...args, join(dir, `${name}.pub`)]);
    const [type, b64] = readFileSync(join(dir, `${name}-cert.pub`), 'utf8')
      .trim()
      .split(' ') as [string, string];
    return { type, blob: Buffer.from(b64, 'base64') };
  };

  const c1 = await certify('ca-ed', [
    '-n',
    'svc:cert-bot,deployers,ops',
    '-V',
    '-5m:+1h',
    '-z',
    '77',
    '-O',
    'force-command=/usr/local/bin/deploy',
    '-O',
    'source-address=127.0.0.0/8',
  ]);
  const parsed = parseCertificate(c1.blob);
  t.match(parsed, { certType: 'ssh-ed25519-cert-v01@openssh.com', serial: 77n, type: 1, keyId: 'id-1', principals: ['svc:cert-bot', 'deployers', 'ops'] });
  t.same([...parsed.criticalOptions.keys()], ['force-command', 'source-address']);
  t.ok(parsed.extensions.has('permit-pty'));
  t.ok(parsed.publicKey.blob.equals(user.blob), 'the certified key is the caller key');
  t.ok(parsed.validBefore > parsed.validAfter);

  const ids = new SshKeyIdentities(
    [],
    [
      { key: caEd, groups_from: 'principals', groups: ['certified'] },
      { key: caEc, groups: [] },
      { key: caRsa, groups: [] },
    ],
    silentLogger,
  );
  const data = Buffer.from('userauth data');
  const proof = { data, signature: { wire: wireSig('ssh-ed25519', sign(null, data, user.priv)) } };
  const cred = (blob: Buffer, address = '127.0.0.1'): SshKeyCredential => ({ algo: 'ssh-ed25519-cert-v01@openssh.com', blob, address, proof });
  const now = Date.now() / 1000;
  const ok1 = ids.verify(cred(c1.blob), now);
  t.match(ok1, {
    ok: true,
    value: {
      subject: 'svc:cert-bot',
      issuer: 'ssh-cert',
      claims: { serial: '77', key_id: 'id-1', force_command: '/usr/local/bin/deploy', principals: ['svc:cert-bot', 'deployers', 'ops'] },
    },
  });
  if (ok1.ok) t.same(ok1.value.groups.sort(), ['certified', 'deployers', 'ops']);
  t.match(ids.verify(cred(c1.blob, '10.1.2.3'), now), { ok: false, error: { code: 'auth.ssh_key', message: /source-address/ } });
  // Proof with another key: the certificate alone names nobody.
  const thief = ed25519();
  t.match(ids.verify({ ...cred(c1.blob), proof: { data, signature: { wire: wireSig('ssh-ed25519', sign(null, data, thief.priv)) } } }, now), {
    ok: false,
    error: { code: 'auth.signature' },
  });

  // ECDSA and RSA CAs.
  const ec = await certify('ca-ec', ['-n', 'svc:ec', '-V', '-5m:+1h']);
  t.match(ids.verify(cred(ec.blob), now), { ok: true, value: { subject: 'svc:ec', groups: [] } });
  const rsa = await certify('ca-rsa', ['-n', 'svc:rsa', '-V', '-5m:+1h']);
  t.match(ids.verify(cred(rsa.blob), now), { ok: true, value: { subject: 'svc:rsa' } });
  // An RSA CA signing with SHA-1 (ssh-rsa) is refused.
  const sha1 = await certify('ca-rsa', ['-n', 'svc:rsa', '-V', '-5m:+1h', '-t', 'ssh-rsa']).catch(() => null);
  if (sha1) t.match(ids.verify(cred(sha1.blob), now), { ok: false, error: { code: 'auth.signature' } }, 'SHA-1 CA signature refused');

  const refusals: [string, string[], string, RegExp][] = [
    ['ca-other', ['-n', 'svc:x', '-V', '-5m:+1h'], 'auth.ssh_key', /trusted CA/],
    ['ca-ed', ['-n', 'svc:x', '-V', '20200101:20200102'], 'auth.expired', /expired/],
    ['ca-ed', ['-n', 'svc:x', '-V', '+1d:+2d'], 'auth.not_yet_valid', /not yet valid/],
    ['ca-ed', ['-n', 'svc:x', '-V', '-5m:+1h', '-h'], 'auth.ssh_key', /not a user certificate/],
    ['ca-ed', ['-V', '-5m:+1h'], 'auth.ssh_key', /no principal/],
    ['ca-ed', ['-n', 'svc:x', '-V', '-5m:+1h', '-O', 'critical:magic@example.com=on'], 'auth.ssh_key', /does not honour: magic@example.com/],
    ['ca-ed', ['-n', 'svc:x', '-V', '-5m:+1h', '-O', 'verify-required'], 'auth.ssh_key', /does not honour: verify-required/],
  ];
  for (const [ca, args, code, message] of refusals) {
    const c = await certify(ca, args);
    t.match(ids.verify(cred(c.blob), now), { ok: false, error: { code, message } }, `${args.join(' ')}: ${code}`);
  }
  t.ok(otherCa);
  // Tampering with any signed byte breaks the CA signature.
  const tampered = Buffer.from(c1.blob);
  const at = tampered.indexOf(Buffer.from('svc:cert-bot'));
  tampered[at] = 'S'.charCodeAt(0);
  t.match(ids.verify(cred(tampered), now), { ok: false, error: { code: 'auth.signature' } });
  // Private keys made by ssh-keygen are not needed by the gateway; make sure node can read the test key type.
  t.ok(createPrivateKey(user.priv.export({ format: 'pem', type: 'pkcs8' })));
});
