/**
 * The gateway's own SSH login to the target, one per caller connection: TCP, the target's
 * host key checked against `known_hosts` (only the key types listed for the host are
 * offered, so the check cannot be dodged by a type we have no entry for), then the
 * connector's private key or password. A host without an entry is refused, unless
 * `trust_on_first_use` is set: then its first key is pinned in `data_dir/ssh`.
 */
import { appendFileSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { createHash } from 'node:crypto';
import ssh2, { type Client, type ConnectConfig } from 'ssh2';
import { splitHostPort } from '@gatehouse/core';
import { hostKeyAlgorithms, hostName, KnownHosts } from './known-hosts.js';

export interface UpstreamTarget {
  address: string;
  user: string;
  privateKey?: string;
  passphrase?: string;
  password?: string;
  knownHosts: KnownHosts;
  /** Where first-use keys are pinned (read at start, appended to); null without TOFU. */
  tofuFile: string | null;
  connectTimeoutMs: number;
  keepaliveMs: number;
}

export type UpstreamFailure = {
  code: 'upstream.unreachable' | 'upstream.host_key' | 'upstream.auth' | 'upstream.error';
  message: string;
  /** The key the target presented, when the failure is about it. */
  presented?: { type: string; fingerprint: string };
};

export type UpstreamResult = { ok: true; client: Client; tofu?: { fingerprint: string } } | { ok: false; error: UpstreamFailure };

const fingerprintOf = (blob: Buffer) => `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;

function keyType(blob: Buffer): string {
  const n = blob.length >= 4 ? blob.readUInt32BE(0) : 0;
  return n > 0 && n < 64 ? blob.subarray(4, 4 + n).toString('latin1') : 'unknown';
}

/** The first-use pins, read fresh (another connection may have just pinned a key). */
function pinned(file: string | null): KnownHosts | null {
  if (file === null) return null;
  try {
    return new KnownHosts(readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
}

export function connectUpstream(t: UpstreamTarget): Promise<UpstreamResult> {
  const { host, port } = splitHostPort(t.address);
  const name = hostName(host, port);
  const pins = pinned(t.tofuFile);
  const listed = [...t.knownHosts.keysFor(host, port), ...(pins?.keysFor(host, port) ?? [])];
  const algorithms = hostKeyAlgorithms([...new Set(listed.map((k) => k.type))]);
  let hostKeyFailure: UpstreamFailure | null = null;
  let tofu: { fingerprint: string } | undefined;
  return new Promise((resolve) => {
    const client = new ssh2.Client();
    let settled = false;
    const done = (r: UpstreamResult) => {
      if (settled) return;
      settled = true;
      if (!r.ok) client.end();
      resolve(r);
    };
    const config: ConnectConfig = {
      host,
      port,
      username: t.user,
      readyTimeout: t.connectTimeoutMs,
      keepaliveInterval: t.keepaliveMs,
      keepaliveCountMax: 3,
      tryKeyboard: false,
      ...(t.privateKey !== undefined ? { privateKey: t.privateKey, ...(t.passphrase !== undefined ? { passphrase: t.passphrase } : {}) } : {}),
      ...(t.password !== undefined ? { password: t.password } : {}),
      ...(algorithms.length ? { algorithms: { serverHostKey: algorithms as NonNullable<ConnectConfig['algorithms']>['serverHostKey'] } } : {}),
      hostVerifier: (key: Buffer) => {
        const presented = { type: keyType(key), fingerprint: fingerprintOf(key) };
        const check = t.knownHosts.check(host, port, key);
        const pin = pins?.check(host, port, key);
        if (check.verdict === 'revoked' || pin?.verdict === 'revoked') {
          hostKeyFailure = { code: 'upstream.host_key', message: `the host key of ${name} (${presented.fingerprint}) is revoked in known_hosts`, presented };
          return false;
        }
        if (check.verdict === 'known' || pin?.verdict === 'known') return true;
        if (check.verdict === 'mismatch' || pin?.verdict === 'mismatch') {
          hostKeyFailure = {
            code: 'upstream.host_key',
            message: `REMOTE HOST IDENTIFICATION HAS CHANGED: ${name} presented ${presented.type} ${presented.fingerprint}, which is not the key in known_hosts; refusing to log in`,
            presented,
          };
          return false;
        }
        if (t.tofuFile === null) {
          hostKeyFailure = {
            code: 'upstream.host_key',
            message: `${name} is not in known_hosts (presented ${presented.type} ${presented.fingerprint}); refusing to log in`,
            presented,
          };
          return false;
        }
        mkdirSync(dirname(t.tofuFile), { recursive: true, mode: 0o700 });
        appendFileSync(t.tofuFile, `${name} ${presented.type} ${key.toString('base64')}\n`, { mode: 0o600 });
        tofu = { fingerprint: presented.fingerprint };
        return true;
      },
    };
    client.once('ready', () => done({ ok: true, client, ...(tofu ? { tofu } : {}) }));
    client.once('error', (e: Error & { level?: string }) => {
      if (hostKeyFailure) return done({ ok: false, error: hostKeyFailure });
      if (e.level === 'client-authentication')
        return done({ ok: false, error: { code: 'upstream.auth', message: `the target ${name} refused the gateway's credential for ${t.user}` } });
      if (e.level === 'client-socket' || e.level === 'client-timeout' || /timed out|ECONNREFUSED|EHOSTUNREACH|ENOTFOUND/.test(e.message)) {
        return done({ ok: false, error: { code: 'upstream.unreachable', message: `cannot reach the target ${name}: ${e.message}` } });
      }
      done({ ok: false, error: { code: 'upstream.error', message: `SSH to the target ${name} failed: ${e.message}` } });
    });
    client.once('close', () => done({ ok: false, error: hostKeyFailure ?? { code: 'upstream.unreachable', message: `the target ${name} closed the connection` } }));
    try {
      client.connect(config);
      // ssh2 opens its socket with Nagle's algorithm on: the small requests a caller pipelines
      // (SFTP READs, window adjusts) would then wait for the target's delayed ACK, ~40 ms per
      // round trip. The caller's side is created with noDelay (connector.ts).
      client.setNoDelay(true);
    } catch (e) {
      done({ ok: false, error: { code: 'upstream.error', message: `SSH to the target ${name} failed: ${(e as Error).message}` } });
    }
  });
}
