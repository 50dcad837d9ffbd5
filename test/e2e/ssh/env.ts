/**
 * A real OpenSSH server for the SSH connector's end-to-end tests, and the real clients:
 * sshd on a free loopback port with its own host key, a config that needs no PAM and no
 * system files (`UsePAM no`, `StrictModes no`, an AuthorizedKeysFile in the temp dir holding
 * the gateway's upstream key), run as the current user (root on CI: `PermitRootLogin
 * prohibit-password`). Keys and certificates are made with ssh-keygen.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../../lib/net.js';

export const run = promisify(execFile);
export const SSHD = '/usr/sbin/sshd';

export function sshAvailable(): string | null {
  for (const bin of [SSHD, '/usr/bin/ssh', '/usr/bin/scp', '/usr/bin/sftp', '/usr/bin/ssh-keygen']) {
    if (!existsSync(bin)) return `${bin} is not installed (scripts/ensure-system-deps.sh installs openssh-server and openssh-client)`;
  }
  return null;
}

export interface KeyPair {
  path: string;
  pub: string;
}

export async function keygen(dir: string, name: string, type: 'ed25519' | 'ecdsa' | 'rsa' = 'ed25519', comment = name): Promise<KeyPair> {
  const path = join(dir, name);
  await run('ssh-keygen', ['-q', '-t', type, ...(type === 'rsa' ? ['-b', '3072'] : []), '-N', '', '-C', comment, '-f', path]);
  chmodSync(path, 0o600);
  return { path, pub: readFileSync(`${path}.pub`, 'utf8').trim() };
}

/** `ssh-keygen -s CA -I id -n principals -V validity [-O option…] key.pub` → the certificate's path. */
export async function signCert(ca: KeyPair, key: KeyPair, o: { id: string; principals: string[]; validity?: string; options?: string[]; serial?: number }): Promise<string> {
  await run('ssh-keygen', [
    '-q',
    '-s',
    ca.path,
    '-I',
    o.id,
    '-n',
    o.principals.join(','),
    ...(o.validity ? ['-V', o.validity] : []),
    ...(o.serial !== undefined ? ['-z', String(o.serial)] : []),
    ...(o.options ?? []).flatMap((x) => ['-O', x]),
    `${key.path}.pub`,
  ]);
  return `${key.path}-cert.pub`;
}

export interface Sshd {
  dir: string;
  port: number;
  user: string;
  /** A folder the login user may write to (transfers land here). */
  work: string;
  /** True when the login user is not root: sshd then runs the session privilege-separated (signals work). */
  privsep: boolean;
  /** The target's host public key line. */
  hostPub: string;
  /** The gateway's key for the target (private key path) and a known_hosts naming the target. */
  gatewayKey: KeyPair;
  knownHosts: string;
  /** Restart with a new host key (a "changed target"). */
  rotateHostKey(): Promise<void>;
  stop(): Promise<void>;
}

export async function startSshd(): Promise<Sshd> {
  const dir = mkdtempSync(join(tmpdir(), 'gh-sshd-'));
  chmodSync(dir, 0o755);
  const port = await freePort();
  const user = await loginUser();
  const work = join(dir, 'work');
  mkdirSync(work);
  if (user !== userInfo().username) await run('chown', [user, work]);
  const hostKey = await keygen(dir, 'ssh_host_ed25519_key');
  const gatewayKey = await keygen(dir, 'gateway_upstream_key');
  writeFileSync(join(dir, 'authorized_keys'), `${gatewayKey.pub}\n`, { mode: 0o644 });
  const sftpServer = ['/usr/lib/openssh/sftp-server', '/usr/libexec/openssh/sftp-server'].find((p) => existsSync(p)) ?? 'internal-sftp';
  writeFileSync(
    join(dir, 'sshd_config'),
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${join(dir, 'ssh_host_ed25519_key')}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'UsePAM no',
      'StrictModes no',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PubkeyAuthentication yes',
      'PermitRootLogin prohibit-password',
      'AllowTcpForwarding yes',
      'AcceptEnv LANG LC_*',
      'PrintMotd no',
      'PrintLastLog no',
      'LogLevel VERBOSE',
      `Subsystem sftp ${sftpServer}`,
      '',
    ].join('\n'),
  );
  // sshd refuses to start without its privilege-separation directory.
  if (!existsSync('/run/sshd')) mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  let child: ChildProcess = await launch(dir, port);
  const sshd: Sshd = {
    dir,
    port,
    user,
    work,
    privsep: user !== 'root',
    hostPub: hostKey.pub,
    gatewayKey,
    get knownHosts() {
      return `[127.0.0.1]:${port} ${sshd.hostPub}\n`;
    },
    async rotateHostKey() {
      await stopChild(child);
      rmSync(join(dir, 'ssh_host_ed25519_key'));
      rmSync(join(dir, 'ssh_host_ed25519_key.pub'));
      const fresh = await keygen(dir, 'ssh_host_ed25519_key');
      sshd.hostPub = fresh.pub;
      child = await launch(dir, port);
    },
    async stop() {
      await stopChild(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return sshd;
}

/** The account the gateway logs in to the target as. */
export const TEST_USER = 'gh-ssh-test';

/**
 * As root, an unprivileged local account (created once; not locked, no password): sshd only
 * passes signals to privilege-separated sessions. Otherwise the current user.
 */
async function loginUser(): Promise<string> {
  if (process.getuid?.() !== 0) return userInfo().username;
  const exists = await run('id', ['-u', TEST_USER]).then(
    () => true,
    () => false,
  );
  if (!exists) await run('useradd', ['-m', '-s', '/bin/sh', TEST_USER]).catch(() => {});
  // A locked account ('!' in shadow) is refused by sshd without PAM; '*' is no password, not locked.
  const ok = await run('usermod', ['-p', '*', TEST_USER]).then(
    () => true,
    () => false,
  );
  return ok ? TEST_USER : 'root';
}

async function launch(dir: string, port: number): Promise<ChildProcess> {
  const child = spawn(SSHD, ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
  // A test process that dies (a tap timeout) must not leave its sshd listening.
  const reap = () => child.kill('SIGKILL');
  process.once('exit', reap);
  child.once('exit', () => process.off('exit', reap));
  let log = '';
  child.stderr.on('data', (c: Buffer) => {
    log += c.toString();
    if (log.length > 200_000) log = log.slice(-100_000);
    if (process.env.GATEHOUSE_TEST_SSHD_LOG) process.stderr.write(c);
  });
  // Ready when the port answers with an SSH banner.
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`sshd exited: ${log}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = createConnection(port, resolve);
      s.on('error', () => resolve(false));
    });
    if (ok) return child;
    if (Date.now() > deadline) throw new Error(`sshd did not start: ${log}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function createConnection(port: number, done: (ok: boolean) => void) {
  const s = connect(port, '127.0.0.1');
  s.once('data', (d) => {
    done(d.toString().startsWith('SSH-'));
    s.destroy();
  });
  return s;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await Promise.race([gone, new Promise((r) => setTimeout(r, 3000))]);
  if (child.exitCode === null) child.kill('SIGKILL');
}

/** Options for the real `ssh`/`scp`/`sftp` clients talking to the gateway. */
export function clientOptions(o: { port: number; knownHosts: string; identity?: string; cert?: string; batch?: boolean }): string[] {
  return [
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    `UserKnownHostsFile=${o.knownHosts}`,
    '-o',
    'GlobalKnownHostsFile=/dev/null',
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    'IdentityAgent=none',
    '-o',
    'ConnectTimeout=10',
    '-o',
    'LogLevel=ERROR',
    ...(o.batch === false ? [] : ['-o', 'BatchMode=yes']),
    ...(o.identity ? ['-i', o.identity] : []),
    ...(o.cert ? ['-o', `CertificateFile=${o.cert}`] : []),
    '-o',
    'PasswordAuthentication=no',
    '-o',
    'KbdInteractiveAuthentication=no',
  ];
}

export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run a client; never throws on a non-zero exit. */
export function runClient(bin: string, args: string[], o: { input?: string | Buffer; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ['pipe', 'pipe', 'pipe'], env: o.env ?? process.env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const t = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(t);
      resolve({ code: code ?? -1, stdout, stderr });
    });
    if (o.input !== undefined) child.stdin.end(o.input);
    else child.stdin.end();
  });
}
