/**
 * SCRAM-SHA-256 client (RFC 5802 / RFC 7677) for the gateway's own upstream login.
 * No channel binding (gs2 header `n,,`): the upstream TLS session, when there is one, is
 * verified by `sslmode`, not by SCRAM. The server's signature is always verified, and
 * `verified` tells the caller whether it was: a server that reports success without
 * proving it knows the password must not be trusted.
 */
import { createHash, createHmac, pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import { err, ok, type Result } from '@gatehouse/core';

const pbkdf2Async = promisify(pbkdf2);

/** Salted passwords by salt+iterations: PBKDF2 is deliberately slow, and a server's salt is stable. */
export type SaltedPasswordCache = Map<string, Buffer>;
const CACHE_MAX = 16;

export interface ScramOptions {
  /** SCRAM user name; PostgreSQL ignores it (it uses the startup user), libpq sends ''. */
  user?: string;
  /** Fixed client nonce — only for known-answer tests; a login always uses a random one. */
  nonce?: string;
}

export class ScramClient {
  private readonly nonce: string;
  private readonly firstBare: string;
  private expectedServerSignature: Buffer | null = null;
  private serverVerified = false;

  constructor(
    private readonly password: string,
    private readonly cache: SaltedPasswordCache,
    opts: ScramOptions = {},
  ) {
    this.nonce = opts.nonce ?? randomBytes(18).toString('base64');
    this.firstBare = `n=${saslName(opts.user ?? '')},r=${this.nonce}`;
  }

  /** True once the server-final-message carried the right signature. */
  get verified(): boolean {
    return this.serverVerified;
  }

  clientFirst(): Buffer {
    return Buffer.from('n,,' + this.firstBare, 'utf8');
  }

  /** From server-first-message to client-final-message. */
  async clientFinal(serverFirst: string): Promise<Result<Buffer>> {
    if (this.expectedServerSignature) return err('upstream.auth', 'SCRAM: second server-first-message');
    const attrs = parseAttributes(serverFirst);
    if (attrs.has('m')) return err('upstream.auth', 'SCRAM: server requires an unsupported extension');
    const nonce = attrs.get('r');
    const salt = attrs.get('s');
    const iterations = Number(attrs.get('i'));
    if (!nonce || !nonce.startsWith(this.nonce) || nonce.length === this.nonce.length) return err('upstream.auth', 'SCRAM: server nonce invalid');
    if (!salt || !Number.isInteger(iterations) || iterations < 1 || iterations > 10_000_000) return err('upstream.auth', 'SCRAM: bad salt or iteration count');
    const key = `${salt}:${iterations}`;
    let salted = this.cache.get(key);
    if (!salted) {
      salted = await pbkdf2Async(saslPrep(this.password), Buffer.from(salt, 'base64'), iterations, 32, 'sha256');
      if (this.cache.size >= CACHE_MAX) this.cache.delete(this.cache.keys().next().value as string);
      this.cache.set(key, salted);
    }
    const clientKey = hmac(salted, 'Client Key');
    const storedKey = createHash('sha256').update(clientKey).digest();
    const finalWithoutProof = `c=biws,r=${nonce}`;
    const authMessage = `${this.firstBare},${serverFirst},${finalWithoutProof}`;
    const signature = hmac(storedKey, authMessage);
    const proof = Buffer.alloc(32);
    for (let i = 0; i < 32; i++) proof[i] = clientKey[i] ^ signature[i];
    this.expectedServerSignature = hmac(hmac(salted, 'Server Key'), authMessage);
    return ok(Buffer.from(`${finalWithoutProof},p=${proof.toString('base64')}`, 'utf8'));
  }

  /** Check server-final-message: the server proves it knows the password too. */
  verifyServerFinal(serverFinal: string): Result<void> {
    const attrs = parseAttributes(serverFinal);
    if (attrs.has('e')) return err('upstream.auth', `SCRAM: server error ${attrs.get('e')}`);
    const v = attrs.get('v');
    const expected = this.expectedServerSignature;
    if (!v || !expected) return err('upstream.auth', 'SCRAM: missing server signature');
    const got = Buffer.from(v, 'base64');
    if (got.length !== expected.length || !timingSafeEqual(got, expected)) return err('upstream.auth', 'SCRAM: server signature mismatch');
    this.serverVerified = true;
    return ok(undefined);
  }
}

// RFC 3454 C.1.2 (non-ASCII space → U+0020) and B.1 (commonly mapped to nothing).
const NON_ASCII_SPACE = /[\u00A0\u1680\u2000-\u200B\u202F\u205F\u3000]/g;
// eslint-disable-next-line no-misleading-character-class -- RFC 3454 tables list single code points, combining ones included
const MAPPED_TO_NOTHING = /[\u00AD\u034F\u1806\u180B-\u180D\u200C\u200D\u2060\uFE00-\uFE0F\uFEFF]/g;
// RFC 3454 prohibited output C.2.1–C.9 (controls, private use, non-characters, surrogates,
// unsuitable for plain text / canonical representation, change display, tagging).
const PROHIBITED =
  // eslint-disable-next-line no-misleading-character-class -- RFC 3454 tables list single code points, combining ones included
  /[\u0000-\u001F\u007F-\u009F\u0340\u0341\u06DD\u070F\u180E\u200C\u200D\u200E\u200F\u202A-\u202E\u2028\u2029\u2060-\u2063\u206A-\u206F\u2FF0-\u2FFB\uD800-\uDFFF\uE000-\uF8FF\uFDD0-\uFDEF\uFEFF\uFFF9-\uFFFF\u{1D173}-\u{1D17A}\u{E0001}\u{E0020}-\u{E007F}\u{F0000}-\u{FFFFD}\u{100000}-\u{10FFFD}]|[\u{1FFFE}\u{1FFFF}\u{2FFFE}\u{2FFFF}\u{3FFFE}\u{3FFFF}\u{4FFFE}\u{4FFFF}\u{5FFFE}\u{5FFFF}\u{6FFFE}\u{6FFFF}\u{7FFFE}\u{7FFFF}\u{8FFFE}\u{8FFFF}\u{9FFFE}\u{9FFFF}\u{AFFFE}\u{AFFFF}\u{BFFFE}\u{BFFFF}\u{CFFFE}\u{CFFFF}\u{DFFFE}\u{DFFFF}\u{EFFFE}\u{EFFFF}]/u;

/**
 * SASLprep (RFC 4013) as PostgreSQL applies it to SCRAM passwords (src/common/saslprep.c),
 * so a verifier the server built from a non-ASCII password matches: ASCII passes unchanged;
 * otherwise map, NFKC, and if the result is empty or holds a prohibited character, the
 * server falls back to the raw password — so do we. Not checked (as libpq-compatible
 * drivers such as node-postgres also skip them): the Unicode 3.2 unassigned-code-point
 * table and the bidirectional rule; a password that trips only those is prepped here and
 * used raw by the server, and the login fails with 28P01 rather than succeeding wrongly.
 */
export function saslPrep(password: string): string {
  if (/^[\u0000-\u007F]*$/.test(password)) return password;
  const mapped = password.replace(NON_ASCII_SPACE, ' ').replace(MAPPED_TO_NOTHING, '').normalize('NFKC');
  if (mapped === '' || PROHIBITED.test(mapped)) return password;
  return mapped;
}

/** RFC 5802 saslname: ',' and '=' escaped. */
function saslName(s: string): string {
  return s.replace(/=/g, '=3D').replace(/,/g, '=2C');
}

function hmac(key: Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

function parseAttributes(s: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const part of s.split(',')) {
    const eq = part.indexOf('=');
    if (eq === 1) m.set(part[0], part.slice(2));
  }
  return m;
}
