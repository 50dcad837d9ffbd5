/**
 * A gateway with one SSH connector in front of a real sshd, and a caller key bound to
 * `svc:deploy` (group deployers): what most SSH end-to-end tests start from.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2, { type Client, type ClientChannel, type ConnectConfig } from 'ssh2';
import { readEvents } from '@gatehouse/audit';
import type { AuditEvent } from '@gatehouse/core';
import { startTestGateway, TOKENS, type TestGateway } from '../../lib/gateway.js';
import { clientOptions, keygen, type KeyPair, type Sshd } from './env.js';

export interface SshGateway {
  tg: TestGateway;
  port: number;
  /** known_hosts file naming the gateway's host key for its port. */
  knownHosts: string;
  hostPub: string;
  dir: string;
  caller: KeyPair;
  /** Options for ssh/scp/sftp with the caller key. */
  opts(extra?: { identity?: string; cert?: string }): string[];
  events(kind?: string): AuditEvent[];
  stop(): Promise<void>;
}

export interface SshGatewayOptions {
  rules?: string;
  /** Extra identity entries (YAML lines under identity:). */
  identityExtra?: string;
  /** Extra connector keys (YAML lines, indented 4). */
  connectorExtra?: string;
  upstreamExtra?: string;
  knownHosts?: string;
  masking?: string;
  allow?: string;
}

export async function startSshGateway(sshd: Sshd, o: SshGatewayOptions = {}): Promise<SshGateway> {
  const dir = mkdtempSync(join(tmpdir(), 'gh-ssh-client-'));
  const caller = await keygen(dir, 'caller_key', 'ed25519', 'deploy-bot');
  const upstreamKnownHosts = join(dir, 'target_known_hosts');
  writeFileSync(upstreamKnownHosts, o.knownHosts ?? sshd.knownHosts);
  const tg = await startTestGateway({
    yaml: `
audit: { durability: strict }
identity:
  static_tokens:
    - { token: "${TOKENS.billing}", subject: "svc:billing", groups: [payments] }
    - { token: "${TOKENS.admin}", subject: "svc:ci", groups: [deployers] }
  ssh_keys:
    - { key: "${caller.pub}", subject: "svc:deploy", groups: [deployers] }
${o.identityExtra ?? ''}
connectors:
  - name: web-hosts
    type: ssh
    listen: 127.0.0.1:0
    upstream: { address: 127.0.0.1:${sshd.port}, user: ${sshd.user}, private_key: "${sshd.gatewayKey.path}", known_hosts: "${upstreamKnownHosts}"${o.upstreamExtra ?? ''} }
    allow: ${o.allow ?? '[ { groups: [deployers] } ]'}
    rules:
${
  o.rules ??
  `      - { name: no-rm, match: { command: ["rm -rf *", "shutdown*"] }, action: deny }
      - { name: shells-reviewed, match: { channel: [shell] }, action: review }`
}
${o.masking ?? ''}
${o.connectorExtra ?? ''}
`,
  });
  const { port } = tg.address('web-hosts');
  const hostPub = readFileSync(join(tg.dataDir, 'ssh', 'ssh_host_ed25519_key.pub'), 'utf8')
    .trim()
    .split(' ')
    .slice(0, 2)
    .join(' ');
  const knownHosts = join(dir, 'gateway_known_hosts');
  writeFileSync(knownHosts, `[127.0.0.1]:${port} ${hostPub}\n`);
  return {
    tg,
    port,
    knownHosts,
    hostPub,
    dir,
    caller,
    opts: (extra = {}) => [...clientOptions({ port, knownHosts, identity: extra.identity ?? caller.path, ...(extra.cert ? { cert: extra.cert } : {}) }), '-p', String(port)],
    events: (kind) => readEvents(tg.dataDir, { connector: 'web-hosts', limit: 10000, ...(kind ? { kind: kind } : {}) }),
    async stop() {
      await tg.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** An ssh2 client logged in to the gateway (for what the ssh CLI cannot script: one connection, many channels). */
export function ssh2Connect(g: SshGateway, auth: Partial<ConnectConfig>): Promise<Client> {
  return new Promise((resolve, reject) => {
    const c = new ssh2.Client();
    c.once('ready', () => resolve(c));
    c.once('error', reject);
    c.connect({
      host: '127.0.0.1',
      port: g.port,
      username: 'deploy',
      readyTimeout: 10_000,
      hostVerifier: (key: Buffer) => key.toString('base64') === g.hostPub.split(' ')[1],
      ...auth,
    });
  });
}

export interface ExecResult {
  code: number | null;
  signal?: string;
  stdout: string;
  stderr: string;
}

/** Run one exec on an open connection; resolves when the channel closes. */
export function ssh2Exec(c: Client, command: string, o: { input?: string; pty?: boolean } = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    c.exec(command, o.pty ? { pty: { rows: 24, cols: 80, term: 'xterm' } } : {}, (e, ch: ClientChannel) => {
      if (e) return reject(e);
      let stdout = '';
      let stderr = '';
      let code: number | null = null;
      let signal: string | undefined;
      ch.on('data', (d: Buffer) => (stdout += d.toString()));
      ch.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      ch.on('exit', (c2: number | null, s?: string) => {
        code = c2;
        signal = s;
      });
      ch.on('close', () => resolve({ code, ...(signal ? { signal } : {}), stdout, stderr }));
      if (o.input !== undefined) ch.end(o.input);
      else ch.end();
    });
  });
}

/** Poll until `f` gives a value (audit events of a closing session land a moment after the client exits). */
export async function eventually<T>(f: () => T | null | undefined | false, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}
