/**
 * The agent as a witness: it co-signs every checkpoint it has verified (signature, root,
 * and consistency with everything it verified before) in the C2SP tlog-cosignature format
 * (https://c2sp.org/tlog-cosignature, cosignature/v1, Ed25519): an extra signed-note line
 *
 *   — <name> base64( keyID[4] || timestamp[8, big-endian seconds] || Ed25519 signature[64] )
 *
 * over `cosignature/v1\ntime <timestamp>\n<checkpoint body>`, key ID = SHA-256(name || 0x0A ||
 * 0x04 || public key)[:4]. A stolen gateway key alone then cannot forge history that a
 * verifier holding the witness key accepts (decision 0802).
 */
import { createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { loadOrCreateEd25519, sha256 } from '@gatehouse/audit';

const COSIG_ALG = 0x04;
const SIG_PREFIX = '\u2014 ';

export interface WitnessPublic {
  name: string;
  id: Buffer;
  publicKey: Buffer;
}

export interface Witness extends WitnessPublic {
  privateKey: KeyObject;
  /** `<name>+<hex id>+<base64(0x04 || key)>` */
  verifierKey: string;
}

const keyId = (name: string, pub: Buffer) => sha256(Buffer.concat([Buffer.from(name + '\n', 'utf8'), Buffer.from([COSIG_ALG]), pub])).subarray(0, 4);

/** Loads the PKCS#8 PEM key at `path`, creating it (0600, never overwriting) on first use. */
export function loadOrCreateWitness(path: string, name: string): Witness {
  const { privateKey, publicKey } = loadOrCreateEd25519(path);
  const id = keyId(name, publicKey);
  const verifierKey = `${name}+${id.toString('hex')}+${Buffer.concat([Buffer.from([COSIG_ALG]), publicKey]).toString('base64')}`;
  // Published for verifiers; a key mounted read-only (a Kubernetes secret) has no writable folder: the log line then is the copy.
  try {
    writeFileSync(`${path}.pub`, verifierKey + '\n', { mode: 0o644 });
  } catch {
    /* read-only mount */
  }
  return { name, id, publicKey, privateKey, verifierKey };
}

export function parseWitnessKey(text: string): WitnessPublic | null {
  const s = text.trim();
  const a = s.indexOf('+');
  const b = a < 0 ? -1 : s.indexOf('+', a + 1);
  if (b < 0) return null;
  const name = s.slice(0, a);
  const raw = Buffer.from(s.slice(b + 1), 'base64');
  if (!name || /[\s+]/u.test(name) || raw.length !== 33 || raw[0] !== COSIG_ALG) return null;
  const publicKey = raw.subarray(1);
  const id = keyId(name, publicKey);
  if (id.toString('hex') !== s.slice(a + 1, b)) return null;
  return { name, id, publicKey };
}

/** The checkpoint body: the note text before its blank line, with its final newline. */
export function noteBody(note: string): string {
  return note.slice(0, note.lastIndexOf('\n\n') + 1);
}

const message = (body: string, time: bigint) => Buffer.from(`cosignature/v1\ntime ${time}\n${body}`, 'utf8');

/** The cosignature line (no trailing newline) for `note`, at `now`. */
export function cosign(w: Witness, note: string, now = Date.now()): string {
  const time = BigInt(Math.floor(now / 1000));
  const ts = Buffer.alloc(8);
  ts.writeBigUInt64BE(time);
  const sig = sign(null, message(noteBody(note), time), w.privateKey);
  return `${SIG_PREFIX}${w.name} ${Buffer.concat([w.id, ts, sig]).toString('base64')}`;
}

/** Checks one cosignature line against `note` and a witness key; returns the cosigning time (s) or an error text. */
export function verifyCosignature(w: WitnessPublic, note: string, line: string): number | string {
  if (!line.startsWith(SIG_PREFIX)) return 'malformed cosignature line';
  const [name, b64, extra] = line.slice(SIG_PREFIX.length).split(' ');
  if (extra !== undefined || !b64) return 'malformed cosignature line';
  if (name !== w.name) return `cosigned by "${name}", not "${w.name}"`;
  const raw = Buffer.from(b64, 'base64');
  if (raw.length !== 4 + 8 + 64 || !raw.subarray(0, 4).equals(w.id)) return 'cosignature key id does not match the witness key';
  const time = raw.readBigUInt64BE(4);
  const pub = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: w.publicKey.toString('base64url') }, format: 'jwk' });
  if (!verify(null, message(noteBody(note), time), pub, raw.subarray(12))) return 'cosignature does not verify';
  return Number(time);
}
