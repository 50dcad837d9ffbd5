/**
 * SCRAM-SHA-256 client (RFC 5802 / RFC 7677) for the gateway's own upstream login.
 * No channel binding (gs2 header `n,,`): the upstream TLS session, when there is one, is
 * verified by `sslmode`, not by SCRAM. The server's signature is always verified.
 */
import { createHash, createHmac, pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import { err, ok, type Result } from '@gatehouse/core';

const pbkdf2Async = promisify(pbkdf2);

/** Salted passwords by salt+iterations: PBKDF2 is deliberately slow, and a server's salt is stable. */
export type SaltedPasswordCache = Map<string, Buffer>;
const CACHE_MAX = 16;

export class ScramClient {
  private readonly nonce = randomBytes(18).toString('base64');
  private readonly firstBare = `n=,r=${this.nonce}`;
  private expectedServerSignature: Buffer | null = null;

  constructor(
    private readonly password: string,
    private readonly cache: SaltedPasswordCache,
  ) {}

  clientFirst(): Buffer {
    return Buffer.from('n,,' + this.firstBare, 'utf8');
  }

  /** From server-first-message to client-final-message. */
  async clientFinal(serverFirst: string): Promise<Result<Buffer>> {
    const attrs = parseAttributes(serverFirst);
    const nonce = attrs.get('r');
    const salt = attrs.get('s');
    const iterations = Number(attrs.get('i'));
    if (!nonce || !nonce.startsWith(this.nonce) || nonce.length === this.nonce.length) return err('upstream.auth', 'SCRAM: server nonce invalid');
    if (!salt || !Number.isInteger(iterations) || iterations < 1 || iterations > 10_000_000) return err('upstream.auth', 'SCRAM: bad salt or iteration count');
    const key = `${salt}:${iterations}`;
    let salted = this.cache.get(key);
    if (!salted) {
      salted = await pbkdf2Async(this.password.normalize('NFKC'), Buffer.from(salt, 'base64'), iterations, 32, 'sha256');
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
    return ok(undefined);
  }
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
