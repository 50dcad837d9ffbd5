/**
 * mTLS client-certificate identities. The TLS layer has already verified the certificate
 * against the connector's CA; this only maps it to an identity by exact comparison of one
 * named field (subject CN or a URI SAN). A certificate that matches no mapping, or mappings
 * of more than one identity, is refused: a CA-signed certificate alone names nobody.
 */
import { ok, type CertificateMappingConfig, type ClientCertificate, type Identity, type Result } from '@gatehouse/core';
import { fail } from './errors.js';

export const MTLS_ISSUER = 'mtls';

interface Mapping {
  subject: string;
  groups: readonly string[];
}

export class CertificateIdentities {
  private readonly byCN = new Map<string, Mapping>();
  private readonly byURI = new Map<string, Mapping>();

  constructor(mappings: readonly CertificateMappingConfig[]) {
    for (const m of mappings) {
      const entry: Mapping = { subject: m.subject, groups: Object.freeze([...(m.groups ?? [])]) };
      // The loader refuses duplicates; if a caller builds the config by hand, the first entry wins.
      const [table, key] = m.cn !== undefined ? [this.byCN, m.cn] : [this.byURI, m.uri];
      if (key !== undefined && !table.has(key)) table.set(key, entry);
    }
  }

  get size(): number {
    return this.byCN.size + this.byURI.size;
  }

  verify(cert: ClientCertificate, nowSeconds: number): Result<Identity> {
    if (cert.notAfter !== undefined && cert.notAfter <= nowSeconds) return fail('auth.expired', 'client certificate has expired');
    let found: Mapping | null = cert.subjectCN !== undefined ? (this.byCN.get(cert.subjectCN) ?? null) : null;
    for (const uri of cert.sanURIs) {
      const m = this.byURI.get(uri);
      if (m === undefined || m === found) continue;
      if (found !== null && !sameIdentity(found, m)) return fail('auth.certificate', 'client certificate matches more than one identity mapping');
      found ??= m;
    }
    if (found === null) return fail('auth.certificate', 'client certificate is not mapped to an identity');
    const groups = [...found.groups];
    return ok({
      subject: found.subject,
      issuer: MTLS_ISSUER,
      groups,
      claims: {
        sub: found.subject,
        iss: MTLS_ISSUER,
        groups,
        ...(cert.subjectCN !== undefined ? { cn: cert.subjectCN } : {}),
        uris: [...cert.sanURIs],
        fingerprint256: cert.fingerprint256,
        ...(cert.notAfter !== undefined ? { exp: cert.notAfter } : {}),
      },
      ...(cert.notAfter !== undefined ? { expiresAt: cert.notAfter * 1000 } : {}),
    });
  }
}

/** Two mappings a certificate hits at once are fine only if they say the same thing. */
function sameIdentity(a: Mapping, b: Mapping): boolean {
  return a.subject === b.subject && a.groups.length === b.groups.length && a.groups.every((g, i) => g === b.groups[i]);
}
