/**
 * The gateway's own SSH host key: what callers pin in their known_hosts. `host_key:
 * data_dir` (the default) uses one Ed25519 key created once in `data_dir/ssh` and kept
 * across restarts (never regenerated: a new key would look like an attack to every caller);
 * any other value is a private key in OpenSSH/PEM form, inline or a path to a file.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import ssh2, { type ParsedKey } from 'ssh2';

export interface HostKey {
  /** The private key as ssh2 takes it. */
  private: string;
  /** `ssh-ed25519 AAAA…` — for callers' known_hosts. */
  public: string;
  fingerprint: string;
  /** The file it came from, when it came from one. */
  path?: string;
  created: boolean;
}

export const HOST_KEY_FILE = 'ssh_host_ed25519_key';

export function loadHostKey(setting: string, dataDir: string): HostKey {
  if (setting === 'data_dir') return dataDirKey(join(dataDir, 'ssh'));
  const text = setting.includes('PRIVATE KEY-----') ? setting : readFileSync(setting, 'utf8');
  return describe(text, setting.includes('PRIVATE KEY-----') ? undefined : setting, false);
}

function dataDirKey(dir: string): HostKey {
  const path = join(dir, HOST_KEY_FILE);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  let text: string;
  let created = false;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    const pair = generateEd25519();
    try {
      // 'wx': two connectors starting at once must not overwrite each other's new key.
      writeFileSync(path, pair.private, { mode: 0o600, flag: 'wx' });
      writeFileSync(`${path}.pub`, `${pair.public}\n`, { mode: 0o644 });
      created = true;
    } catch (w) {
      if ((w as NodeJS.ErrnoException).code !== 'EEXIST') throw w;
    }
    text = readFileSync(path, 'utf8');
  }
  return describe(text, path, created);
}

function describe(text: string, path: string | undefined, created: boolean): HostKey {
  const parsed = ssh2.utils.parseKey(text);
  if (parsed instanceof Error) throw new Error(`host_key: ${parsed.message}`);
  const key: ParsedKey = parsed;
  if (!key.isPrivateKey()) throw new Error('host_key: not a private key');
  const blob = key.getPublicSSH();
  return {
    private: text,
    public: `${key.type} ${blob.toString('base64')}`,
    fingerprint: `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`,
    ...(path ? { path } : {}),
    created,
  };
}

/**
 * A new Ed25519 key pair in OpenSSH format. ssh2 1.17's generator writes a private key that
 * neither it nor ssh-keygen can read about once in 300 tries; a host key is kept forever, so
 * it is read back before it is used, and made again when it does not parse.
 */
export function generateEd25519(comment = 'gatehouse'): { private: string; public: string } {
  for (let i = 0; i < 20; i++) {
    const pair = ssh2.utils.generateKeyPairSync('ed25519', { comment });
    if (!(ssh2.utils.parseKey(pair.private) instanceof Error)) return pair;
  }
  throw new Error('could not generate an Ed25519 host key');
}
