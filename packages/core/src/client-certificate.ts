/**
 * Reads the verified client certificate of a TLS connection into the few fields identity
 * mapping uses. Shared by every connector that supports `tls.client_auth`.
 */
import type { TLSSocket } from 'node:tls';
import type { ClientCertificate } from './types.js';

/**
 * The peer's certificate, only if the TLS layer verified it against the configured CA
 * (`socket.authorized`); null otherwise — an unverified certificate never names anyone.
 */
export function clientCertificateOf(socket: TLSSocket): ClientCertificate | null {
  if (socket.authorized !== true) return null;
  const cert = socket.getPeerCertificate();
  if (!cert || !cert.fingerprint256) return null;
  // A subject with several CNs has no single name: leave it out rather than pick one.
  const cn: unknown = cert.subject?.CN;
  const notAfter = Date.parse(cert.valid_to) / 1000;
  return {
    ...(typeof cn === 'string' && cn !== '' ? { subjectCN: cn } : {}),
    sanURIs: sanURIsOf(cert.subjectaltname),
    fingerprint256: cert.fingerprint256,
    ...(Number.isFinite(notAfter) ? { notAfter } : {}),
  };
}

/**
 * The `URI:` entries of Node's `subjectaltname` text (`DNS:a, URI:spiffe://x, …`). Node
 * writes a value that contains a separator as a JSON string (`URI:"a, b"`), so those are
 * decoded, never split. Unparseable text yields no URIs (fail closed: nothing to match).
 */
export function sanURIsOf(altNames: string | undefined): string[] {
  const out: string[] = [];
  if (!altNames) return out;
  let i = 0;
  while (i < altNames.length) {
    const colon = altNames.indexOf(':', i);
    if (colon === -1) return [];
    const kind = altNames.slice(i, colon);
    let value: string;
    let next: number;
    if (altNames.charCodeAt(colon + 1) === 0x22 /* " */) {
      let j = colon + 2;
      while (j < altNames.length && altNames[j] !== '"') j += altNames[j] === '\\' ? 2 : 1;
      try {
        value = JSON.parse(altNames.slice(colon + 1, j + 1)) as string;
      } catch {
        return [];
      }
      next = j + 1;
    } else {
      const end = altNames.indexOf(', ', colon + 1);
      next = end === -1 ? altNames.length : end;
      value = altNames.slice(colon + 1, next);
    }
    if (kind === 'URI') out.push(value);
    if (next >= altNames.length) break;
    if (!altNames.startsWith(', ', next)) return [];
    i = next + 2;
  }
  return out;
}
