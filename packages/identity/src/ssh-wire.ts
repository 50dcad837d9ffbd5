/**
 * SSH wire formats needed to identify a caller by key (RFC 4251 §5, RFC 4253 §6.6, OpenSSH
 * PROTOCOL.certkeys): public-key blobs to node KeyObjects, SHA256 fingerprints, signature
 * verification, and the OpenSSH certificate format. Pure functions over bytes; every reader
 * is bounds-checked and a malformed blob yields an error, never a partial value.
 */
import { createHash, createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import type { SshSignature } from '@gatehouse/core';

/** Thrown by the readers on malformed input; callers turn it into a refusal. */
export class SshWireError extends Error {
  override name = 'SshWireError';
}

/** A cursor over an SSH wire buffer. */
export class WireReader {
  private pos = 0;
  constructor(readonly buf: Buffer) {}

  get offset(): number {
    return this.pos;
  }

  get done(): boolean {
    return this.pos === this.buf.length;
  }

  uint32(): number {
    if (this.pos + 4 > this.buf.length) throw new SshWireError('truncated uint32');
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  uint64(): bigint {
    if (this.pos + 8 > this.buf.length) throw new SshWireError('truncated uint64');
    const v = this.buf.readBigUInt64BE(this.pos);
    this.pos += 8;
    return v;
  }

  bytes(): Buffer {
    const n = this.uint32();
    if (this.pos + n > this.buf.length) throw new SshWireError('truncated string');
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  /** A string that must be UTF-8 text without NUL bytes (names, principals, options). */
  text(): string {
    const b = this.bytes();
    const s = b.toString('utf8');
    if (!Buffer.from(s, 'utf8').equals(b) || s.includes('\0')) throw new SshWireError('invalid text string');
    return s;
  }

  /** An mpint as unsigned big-endian bytes without leading zeros (negative values refused). */
  mpint(): Buffer {
    const b = this.bytes();
    if (b.length > 0 && (b[0] & 0x80) !== 0) throw new SshWireError('negative mpint');
    let i = 0;
    while (i < b.length && b[i] === 0) i++;
    return b.subarray(i);
  }
}

/** `SHA256:` + unpadded base64 of the SHA-256 of a key blob, as `ssh-keygen -l` prints it. */
export function sshFingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

export type SshKeyType = 'ssh-ed25519' | 'ssh-rsa' | 'ecdsa-sha2-nistp256' | 'ecdsa-sha2-nistp384' | 'ecdsa-sha2-nistp521';

const CURVES: Record<string, { crv: string; size: number; hash: string; name: string }> = {
  'ecdsa-sha2-nistp256': { crv: 'P-256', size: 32, hash: 'sha256', name: 'nistp256' },
  'ecdsa-sha2-nistp384': { crv: 'P-384', size: 48, hash: 'sha384', name: 'nistp384' },
  'ecdsa-sha2-nistp521': { crv: 'P-521', size: 66, hash: 'sha512', name: 'nistp521' },
};

export interface SshPublicKey {
  type: SshKeyType;
  key: KeyObject;
  /** The public key's own wire blob (for a certificate: the certified key, rebuilt). */
  blob: Buffer;
}

const b64url = (b: Buffer) => b.toString('base64url');

/** Reads the key fields of `type` at the reader's position into a KeyObject. */
function readKeyFields(type: string, r: WireReader): { type: SshKeyType; key: KeyObject } {
  if (type === 'ssh-ed25519') {
    const pk = r.bytes();
    if (pk.length !== 32) throw new SshWireError('ed25519 key must be 32 bytes');
    return { type, key: createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64url(pk) }, format: 'jwk' }) };
  }
  if (type === 'ssh-rsa') {
    const e = r.mpint();
    const n = r.mpint();
    // Short RSA keys are refused as OpenSSH does (RequiredRSASize 1024 minimum; we ask 2048).
    if (n.length * 8 < 2048 - 7) throw new SshWireError('RSA keys shorter than 2048 bits are refused');
    return { type, key: createPublicKey({ key: { kty: 'RSA', n: b64url(n), e: b64url(e) }, format: 'jwk' }) };
  }
  const curve = CURVES[type];
  if (curve) {
    const name = r.text();
    if (name !== curve.name) throw new SshWireError(`curve ${name} does not match ${type}`);
    const q = r.bytes();
    if (q.length !== 1 + 2 * curve.size || q[0] !== 0x04) throw new SshWireError('ECDSA point must be uncompressed');
    const x = q.subarray(1, 1 + curve.size);
    const y = q.subarray(1 + curve.size);
    return { type: type as SshKeyType, key: createPublicKey({ key: { kty: 'EC', crv: curve.crv, x: b64url(x), y: b64url(y) }, format: 'jwk' }) };
  }
  throw new SshWireError(`unsupported key type ${type}`);
}

/** A plain public key blob (`string type, key fields`). DSA and security-key types are refused. */
export function parsePublicKeyBlob(blob: Buffer): SshPublicKey {
  const r = new WireReader(blob);
  const type = r.text();
  let parsed: { type: SshKeyType; key: KeyObject };
  try {
    parsed = readKeyFields(type, r);
  } catch (e) {
    if (e instanceof SshWireError) throw e;
    throw new SshWireError(`invalid ${type} key: ${(e as Error).message}`);
  }
  if (!r.done) throw new SshWireError('trailing bytes after the key');
  return { ...parsed, blob };
}

/** An OpenSSH public key line (`ssh-ed25519 AAAA… comment`) → its blob; the type must agree. */
export function parsePublicKeyLine(line: string): SshPublicKey & { comment: string } {
  const m = /^(\S+)\s+([A-Za-z0-9+/]+={0,2})(?:\s+(.*))?$/.exec(line.trim());
  if (!m) throw new SshWireError('not an OpenSSH public key line');
  const blob = Buffer.from(m[2], 'base64');
  const key = parsePublicKeyBlob(blob);
  if (key.type !== m[1]) throw new SshWireError(`key type ${m[1]} does not match its blob (${key.type})`);
  return { ...key, comment: m[3] ?? '' };
}

/** Signature algorithms accepted, by key type. SHA-1 (`ssh-rsa` signatures) is refused. */
const RSA_SIG: Record<string, string> = { 'rsa-sha2-256': 'sha256', 'rsa-sha2-512': 'sha512' };

/**
 * Verify `signature` over `data` with `key`. The wire form carries its algorithm; the bare
 * form (what ssh2 hands a server for a plain key) names it beside the bytes.
 */
export function verifySshSignature(key: SshPublicKey, data: Buffer, signature: SshSignature): boolean {
  try {
    if ('wire' in signature) {
      const r = new WireReader(signature.wire);
      const algo = r.text();
      const sig = r.bytes();
      if (!r.done) return false;
      if (key.type === 'ssh-ed25519') return algo === 'ssh-ed25519' && cryptoVerify(null, data, key.key, sig);
      if (key.type === 'ssh-rsa') {
        const hash = RSA_SIG[algo];
        return hash !== undefined && cryptoVerify(hash, data, key.key, sig);
      }
      const curve = CURVES[key.type];
      if (algo !== key.type) return false;
      const rs = new WireReader(sig);
      const rr = rs.mpint();
      const ss = rs.mpint();
      if (!rs.done || rr.length > curve.size || ss.length > curve.size) return false;
      const p1363 = Buffer.alloc(2 * curve.size);
      rr.copy(p1363, curve.size - rr.length);
      ss.copy(p1363, 2 * curve.size - ss.length);
      return cryptoVerify(curve.hash, data, { key: key.key, dsaEncoding: 'ieee-p1363' }, p1363);
    }
    const { algorithm, bytes } = signature;
    if (key.type === 'ssh-ed25519') return algorithm === 'ssh-ed25519' && cryptoVerify(null, data, key.key, bytes);
    if (key.type === 'ssh-rsa') {
      if (algorithm !== 'ssh-rsa' || (signature.hash !== 'sha256' && signature.hash !== 'sha512')) return false;
      return cryptoVerify(signature.hash, data, key.key, bytes);
    }
    const curve = CURVES[key.type];
    return algorithm === key.type && cryptoVerify(curve.hash, data, { key: key.key, dsaEncoding: 'der' }, bytes);
  } catch {
    return false;
  }
}

/** `…-cert-v01@openssh.com` → the plain key type it certifies. */
const CERT_TYPES: Record<string, SshKeyType> = {
  'ssh-ed25519-cert-v01@openssh.com': 'ssh-ed25519',
  'ssh-rsa-cert-v01@openssh.com': 'ssh-rsa',
  'ecdsa-sha2-nistp256-cert-v01@openssh.com': 'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384-cert-v01@openssh.com': 'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521-cert-v01@openssh.com': 'ecdsa-sha2-nistp521',
};

export function isCertificateType(type: string): boolean {
  return Object.hasOwn(CERT_TYPES, type) || /-cert-v0[01]@openssh\.com$/.test(type);
}

export const SSH_CERT_USER = 1;
export const SSH_CERT_HOST = 2;

/** An OpenSSH certificate as read, before any policy check. */
export interface OpenSshCertificate {
  /** `ssh-ed25519-cert-v01@openssh.com`, … */
  certType: string;
  /** The certified key. */
  publicKey: SshPublicKey;
  serial: bigint;
  /** 1 = user, 2 = host. */
  type: number;
  keyId: string;
  principals: string[];
  /** Seconds since the epoch; `validBefore` 2^64-1 means forever. */
  validAfter: bigint;
  validBefore: bigint;
  /** Name → value (the option's data, itself a string for the known options; raw for others). */
  criticalOptions: Map<string, Buffer>;
  extensions: Map<string, Buffer>;
  /** The CA key blob and the CA's signature over `signed`. */
  signatureKey: Buffer;
  signature: Buffer;
  signed: Buffer;
}

/**
 * Read an OpenSSH certificate blob (PROTOCOL.certkeys, v01). Checks the structure only
 * (field order, sorted unique option names, no trailing bytes); validity, CA and options are
 * the caller's to judge (`checkCertificate` in ssh-identities.ts).
 */
export function parseCertificate(blob: Buffer): OpenSshCertificate {
  const r = new WireReader(blob);
  const certType = r.text();
  const keyType = CERT_TYPES[certType];
  if (!keyType) throw new SshWireError(`unsupported certificate type ${certType}`);
  r.bytes(); // nonce
  const keyStart = r.offset;
  let fields: { type: SshKeyType; key: KeyObject };
  try {
    fields = readKeyFields(keyType, r);
  } catch (e) {
    if (e instanceof SshWireError) throw e;
    throw new SshWireError(`invalid certified key: ${(e as Error).message}`);
  }
  // The certified key as a plain blob: its type name, then the same key fields.
  const typeName = Buffer.from(keyType);
  const head = Buffer.alloc(4);
  head.writeUInt32BE(typeName.length);
  const publicKey: SshPublicKey = { ...fields, blob: Buffer.concat([head, typeName, blob.subarray(keyStart, r.offset)]) };
  const serial = r.uint64();
  const type = r.uint32();
  const keyId = r.text();
  const principals = readStringList(r.bytes());
  const validAfter = r.uint64();
  const validBefore = r.uint64();
  const criticalOptions = readOptions(r.bytes(), 'critical option');
  const extensions = readOptions(r.bytes(), 'extension');
  r.bytes(); // reserved
  const signatureKey = r.bytes();
  const signedEnd = r.offset;
  const signature = r.bytes();
  if (!r.done) throw new SshWireError('trailing bytes after the certificate signature');
  return {
    certType,
    publicKey,
    serial,
    type,
    keyId,
    principals,
    validAfter,
    validBefore,
    criticalOptions,
    extensions,
    signatureKey,
    signature,
    signed: blob.subarray(0, signedEnd),
  };
}

function readStringList(buf: Buffer): string[] {
  const r = new WireReader(buf);
  const out: string[] = [];
  while (!r.done) out.push(r.text());
  return out;
}

/** Options: `string name, string data` pairs, names sorted and unique (as OpenSSH requires). */
function readOptions(buf: Buffer, what: string): Map<string, Buffer> {
  const r = new WireReader(buf);
  const out = new Map<string, Buffer>();
  let last: string | null = null;
  while (!r.done) {
    const name = r.text();
    const data = r.bytes();
    if (last !== null && name <= last) throw new SshWireError(`${what}s are not sorted and unique (${name})`);
    last = name;
    out.set(name, data);
  }
  return out;
}

/** The string value inside an option's data (`force-command`, `source-address`). */
export function optionString(data: Buffer): string {
  const r = new WireReader(data);
  const v = r.text();
  if (!r.done) throw new SshWireError('trailing bytes in an option value');
  return v;
}
