/**
 * OpenSSH known_hosts, for checking the target's host key before the gateway logs in with
 * its own credential: host patterns (`*`, `?`, `!negation`, `[host]:port`), hashed names
 * (`|1|salt|hmac`), and the `@revoked` marker. `@cert-authority` lines are not supported
 * (host certificates are not checked) and are reported as ignored.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export interface KnownHostKey {
  type: string;
  /** The key blob, base64. */
  key: string;
}

interface Line {
  marker: '' | '@revoked' | '@cert-authority';
  patterns: string[];
  type: string;
  key: string;
}

export interface HostKeyCheck {
  /** `known`: the key is listed for the host; `mismatch`: other keys are; `unknown`: no entry; `revoked`. */
  verdict: 'known' | 'mismatch' | 'unknown' | 'revoked';
  /** Key types listed for the host (to offer only those host-key algorithms). */
  types: string[];
}

export class KnownHosts {
  private readonly lines: Line[] = [];
  /** Lines that could not be read, with why (logged by the connector at start). */
  readonly ignored: string[] = [];

  constructor(text: string) {
    for (const [n, raw] of text.split(/\r?\n/).entries()) {
      const line = raw.trim();
      if (!line || line.startsWith('#')) continue;
      const parts = line.split(/\s+/);
      let marker: Line['marker'] = '';
      if (parts[0] === '@revoked' || parts[0] === '@cert-authority') marker = parts.shift() as Line['marker'];
      else if (parts[0].startsWith('@')) {
        this.ignored.push(`line ${n + 1}: unknown marker ${parts[0]}`);
        continue;
      }
      if (parts.length < 3 || !/^[A-Za-z0-9+/]+={0,2}$/.test(parts[2])) {
        this.ignored.push(`line ${n + 1}: not a known_hosts entry`);
        continue;
      }
      if (marker === '@cert-authority') {
        this.ignored.push(`line ${n + 1}: @cert-authority is not supported (host certificates are not checked)`);
        continue;
      }
      this.lines.push({ marker, patterns: parts[0].split(','), type: parts[1], key: parts[2] });
    }
  }

  get size(): number {
    return this.lines.length;
  }

  /** The keys listed for `host:port` (marker-less lines). */
  keysFor(host: string, port: number): KnownHostKey[] {
    const name = hostName(host, port);
    return this.lines.filter((l) => l.marker === '' && matchesHost(l.patterns, name)).map((l) => ({ type: l.type, key: l.key }));
  }

  check(host: string, port: number, presented: Buffer): HostKeyCheck {
    const name = hostName(host, port);
    const b64 = presented.toString('base64');
    const mine = this.lines.filter((l) => matchesHost(l.patterns, name));
    if (this.lines.some((l) => l.marker === '@revoked' && l.key === b64)) return { verdict: 'revoked', types: [] };
    const listed = mine.filter((l) => l.marker === '');
    const types = [...new Set(listed.map((l) => l.type))];
    if (listed.length === 0) return { verdict: 'unknown', types };
    return { verdict: listed.some((l) => l.key === b64) ? 'known' : 'mismatch', types };
  }
}

/** How OpenSSH names a host in known_hosts: `host` on port 22, `[host]:port` otherwise. */
export function hostName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** One line's patterns: a negated match vetoes; otherwise any positive match. */
export function matchesHost(patterns: readonly string[], name: string): boolean {
  let hit = false;
  for (const p of patterns) {
    if (p.startsWith('|1|')) {
      if (hashedMatches(p, name)) hit = true;
      continue;
    }
    const negated = p.startsWith('!');
    const pat = negated ? p.slice(1) : p;
    if (wildcard(pat, name)) {
      if (negated) return false;
      hit = true;
    }
  }
  return hit;
}

function hashedMatches(entry: string, name: string): boolean {
  const [, , salt, hash] = entry.split('|');
  if (!salt || !hash) return false;
  const want = Buffer.from(hash, 'base64');
  const got = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest();
  return want.length === got.length && timingSafeEqual(want, got);
}

function wildcard(pattern: string, name: string): boolean {
  if (!pattern.includes('*') && !pattern.includes('?')) return pattern.toLowerCase() === name.toLowerCase();
  const re = new RegExp(
    '^' +
      pattern
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*/g, '.*')
        .replace(/\?/g, '.') +
      '$',
    'i',
  );
  return re.test(name);
}

/** ssh2 host-key algorithm names for the key types listed (RSA keys sign with SHA-2). */
export function hostKeyAlgorithms(types: readonly string[]): string[] {
  const out: string[] = [];
  for (const t of types) {
    if (t === 'ssh-rsa') out.push('rsa-sha2-512', 'rsa-sha2-256');
    else if (t === 'ssh-ed25519' || t.startsWith('ecdsa-sha2-')) out.push(t);
  }
  return out;
}
