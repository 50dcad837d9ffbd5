/**
 * SSH callers without a token: a public key bound to an identity (`identity.ssh_keys`,
 * issuer `ssh-key`), or an OpenSSH user certificate signed by a configured CA
 * (`identity.ssh_user_ca`, issuer `ssh-cert`) whose first principal is the subject.
 *
 * Order of checks for a signed request: the blob parses; the caller's signature verifies
 * with the (certified) key — proof of possession; then the key is looked up, or the
 * certificate checked: a user certificate, signed by a configured CA with an accepted
 * algorithm, inside its validity window, with at least one principal, and only critical
 * options we honour (`source-address` checked here; `force-command` handed to the connector
 * as a claim); any other critical option refuses the certificate.
 */
import { BlockList, isIP } from 'node:net';
import { ok, type Identity, type Logger, type Result, type SshKeyCredential, type SshKeyMappingConfig, type SshUserCaConfig } from '@gatehouse/core';
import { fail } from './errors.js';
import {
  isCertificateType,
  optionString,
  parseCertificate,
  parsePublicKeyBlob,
  parsePublicKeyLine,
  sshFingerprint,
  SshWireError,
  SSH_CERT_USER,
  verifySshSignature,
  type OpenSshCertificate,
} from './ssh-wire.js';

export const SSH_KEY_ISSUER = 'ssh-key';
export const SSH_CERT_ISSUER = 'ssh-cert';

/** Critical options this gateway honours; a certificate carrying any other is refused. */
export const HONOURED_CRITICAL_OPTIONS: readonly string[] = ['force-command', 'source-address'];

/** Largest key or certificate blob looked at (an RSA-16384 certificate is ~2.5 KiB). */
const MAX_BLOB_BYTES = 16 * 1024;

interface BoundKey {
  subject: string;
  groups: readonly string[];
}

interface Ca {
  blob: Buffer;
  fingerprint: string;
  groupsFromPrincipals: boolean;
  groups: readonly string[];
}

export class SshKeyIdentities {
  /** By base64 of the key blob: exact key match, never a prefix or a comment. */
  private readonly keys = new Map<string, BoundKey>();
  private readonly cas: Ca[] = [];

  constructor(keys: readonly SshKeyMappingConfig[], cas: readonly SshUserCaConfig[], logger: Logger) {
    for (const [i, k] of keys.entries()) {
      try {
        const parsed = parsePublicKeyLine(k.key);
        const id = parsed.blob.toString('base64');
        if (this.keys.has(id)) {
          logger.error({ entry: i, fingerprint: sshFingerprint(parsed.blob) }, 'identity.ssh_keys: the same key is bound twice; the first entry is used');
          continue;
        }
        this.keys.set(id, { subject: k.subject, groups: Object.freeze([...(k.groups ?? [])]) });
      } catch (e) {
        logger.error({ entry: i, reason: (e as Error).message }, 'identity.ssh_keys: key ignored');
      }
    }
    for (const [i, c] of cas.entries()) {
      try {
        const parsed = parsePublicKeyLine(c.key);
        this.cas.push({
          blob: parsed.blob,
          fingerprint: sshFingerprint(parsed.blob),
          groupsFromPrincipals: c.groups_from === 'principals',
          groups: Object.freeze([...(c.groups ?? [])]),
        });
      } catch (e) {
        logger.error({ entry: i, reason: (e as Error).message }, 'identity.ssh_user_ca: CA key ignored');
      }
    }
  }

  get size(): number {
    return this.keys.size + this.cas.length;
  }

  verify(cred: SshKeyCredential, nowSeconds: number): Result<Identity> {
    if (cred.blob.length > MAX_BLOB_BYTES) return fail('auth.ssh_key', 'SSH key is too large');
    let algoType: string;
    try {
      algoType = keyTypeOfBlob(cred.blob);
    } catch {
      return fail('auth.ssh_key', 'SSH key is malformed');
    }
    if (isCertificateType(algoType)) return this.verifyCertificate(cred, nowSeconds);
    let key;
    try {
      key = parsePublicKeyBlob(cred.blob);
    } catch (e) {
      return fail('auth.ssh_key', `SSH key refused: ${(e as SshWireError).message}`);
    }
    const bound = this.keys.get(cred.blob.toString('base64'));
    if (!bound) return fail('auth.ssh_key', 'SSH key is not bound to an identity');
    if (cred.proof === null) return ok(identity(bound.subject, SSH_KEY_ISSUER, [...bound.groups], { fingerprint: sshFingerprint(cred.blob), key_type: key.type }));
    if (!verifySshSignature(key, cred.proof.data, cred.proof.signature)) return fail('auth.signature', 'SSH signature does not verify');
    return ok(identity(bound.subject, SSH_KEY_ISSUER, [...bound.groups], { fingerprint: sshFingerprint(cred.blob), key_type: key.type }));
  }

  private verifyCertificate(cred: SshKeyCredential, nowSeconds: number): Result<Identity> {
    let cert: OpenSshCertificate;
    try {
      cert = parseCertificate(cred.blob);
    } catch (e) {
      return fail('auth.ssh_key', `SSH certificate is malformed: ${(e as Error).message}`);
    }
    const checked = this.checkCertificate(cert, cred.address, nowSeconds);
    if (!checked.ok) return checked;
    if (cred.proof !== null && !verifySshSignature(cert.publicKey, cred.proof.data, cred.proof.signature)) {
      return fail('auth.signature', 'SSH signature does not verify');
    }
    return checked;
  }

  /** Everything about a certificate but the caller's own signature. */
  checkCertificate(cert: OpenSshCertificate, address: string, nowSeconds: number): Result<Identity> {
    const ca = this.cas.find((c) => c.blob.equals(cert.signatureKey));
    if (!ca) return fail('auth.ssh_key', 'SSH certificate is not signed by a trusted CA');
    let caKey;
    try {
      caKey = parsePublicKeyBlob(cert.signatureKey);
    } catch {
      return fail('auth.ssh_key', 'SSH certificate CA key is malformed');
    }
    // The CA's signature (SHA-1 RSA refused, as OpenSSH's CASignatureAlgorithms default).
    if (!verifySshSignature(caKey, cert.signed, { wire: cert.signature })) return fail('auth.signature', 'SSH certificate signature does not verify');
    if (cert.type !== SSH_CERT_USER) return fail('auth.ssh_key', 'SSH certificate is not a user certificate');
    const now = BigInt(Math.floor(nowSeconds));
    if (now < cert.validAfter) return fail('auth.not_yet_valid', 'SSH certificate is not yet valid');
    if (now >= cert.validBefore) return fail('auth.expired', 'SSH certificate has expired');
    if (cert.principals.length === 0) return fail('auth.ssh_key', 'SSH certificate names no principal (principals[0] is the identity)');
    for (const name of cert.criticalOptions.keys()) {
      if (!HONOURED_CRITICAL_OPTIONS.includes(name)) return fail('auth.ssh_key', `SSH certificate has a critical option this gateway does not honour: ${name}`);
    }
    let forceCommand: string | undefined;
    try {
      const fc = cert.criticalOptions.get('force-command');
      if (fc !== undefined) forceCommand = optionString(fc);
      const sa = cert.criticalOptions.get('source-address');
      if (sa !== undefined && !sourceAllowed(optionString(sa), address)) {
        return fail('auth.ssh_key', `SSH certificate source-address does not allow ${address}`);
      }
    } catch (e) {
      return fail('auth.ssh_key', `SSH certificate critical option is malformed: ${(e as Error).message}`);
    }
    const [subject, ...rest] = cert.principals as [string, ...string[]];
    const groups = [...new Set([...ca.groups, ...(ca.groupsFromPrincipals ? rest : [])])];
    return ok(
      identity(subject, SSH_CERT_ISSUER, groups, {
        fingerprint: sshFingerprint(cert.publicKey.blob),
        key_type: cert.publicKey.type,
        serial: cert.serial.toString(),
        key_id: cert.keyId,
        principals: [...cert.principals],
        ca_fingerprint: ca.fingerprint,
        ...(cert.validBefore !== 0xffffffffffffffffn ? { exp: Number(cert.validBefore) } : {}),
        extensions: [...cert.extensions.keys()],
        ...(forceCommand !== undefined ? { force_command: forceCommand } : {}),
      }),
    );
  }
}

function keyTypeOfBlob(blob: Buffer): string {
  if (blob.length < 4) throw new SshWireError('short blob');
  const n = blob.readUInt32BE(0);
  if (n > 64 || 4 + n > blob.length) throw new SshWireError('bad type');
  return blob.subarray(4, 4 + n).toString('latin1');
}

function identity(subject: string, issuer: string, groups: string[], extra: Record<string, unknown>): Identity {
  const exp = extra.exp;
  return { subject, issuer, groups, claims: { sub: subject, iss: issuer, groups, ...extra }, ...(typeof exp === 'number' ? { expiresAt: exp * 1000 } : {}) };
}

/**
 * `source-address`: comma-separated addresses and CIDR blocks (OpenSSH semantics); the
 * caller's address must be in one. A malformed entry refuses (fail closed).
 */
export function sourceAllowed(list: string, address: string): boolean {
  const addr = address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
  const family = isIP(addr);
  if (family === 0) return false;
  const bl = new BlockList();
  for (const raw of list.split(',')) {
    const entry = raw.trim();
    const [net, bits] = entry.split('/') as [string, string | undefined];
    const f = isIP(net);
    if (f === 0) throw new SshWireError(`source-address entry "${entry}" is not an address`);
    const type = f === 4 ? 'ipv4' : 'ipv6';
    if (bits === undefined) bl.addAddress(net, type);
    else {
      const prefix = Number(bits);
      if (!/^\d+$/.test(bits) || prefix > (f === 4 ? 32 : 128)) throw new SshWireError(`source-address entry "${entry}" has a bad prefix`);
      bl.addSubnet(net, prefix, type);
    }
  }
  return bl.check(addr, family === 4 ? 'ipv4' : 'ipv6');
}
