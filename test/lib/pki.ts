/**
 * A throwaway PKI made by openssl for one test run: certificate authorities and leaf
 * certificates (all P-256, valid two days) in a temporary directory removed at teardown, and
 * undici agents that trust the run's CA, with or without a client certificate.
 */
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Agent } from 'undici';
import { TOKENS } from './gateway.js';
import type { TapTest } from './tap.js';

const run = promisify(execFile);

/** The SPIFFE ID the mTLS tests map to an identity. */
export const SPIFFE_BILLING = 'spiffe://example.org/ns/payments/sa/billing';

/**
 * The `identity:` section of the mTLS tests: the billing token, the `mapped` certificate's
 * SPIFFE ID as svc:billing-mtls (group payments), and `more` certificate mappings.
 */
export function mtlsIdentityYaml(...more: string[]): string {
  return `identity:
  static_tokens:
    - { token: "${TOKENS.billing}", subject: "svc:billing", groups: [payments] }
  certificates:
    - { uri: "${SPIFFE_BILLING}", subject: "svc:billing-mtls", groups: [payments] }
${more.map((m) => `    - ${m}\n`).join('')}`;
}

export interface LeafSpec {
  /** File name stem: `<name>.crt`, `<name>.key`. */
  name: string;
  /** The CA that signs it. */
  ca: string;
  /** Subject CN (default: `name`). */
  cn?: string;
  /** X.509 v3 extension lines (subjectAltName, extendedKeyUsage…). */
  ext: string;
}

/** The leaves the TLS tests share: a server certificate for 127.0.0.1 / localhost, and client certificates. */
export const LEAF = {
  server: { name: 'server', ca: 'ca', cn: 'localhost', ext: 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth' },
  /** Carries the SPIFFE ID the tests map to svc:billing-mtls. */
  mapped: { name: 'mapped', ca: 'ca', cn: 'billing-client', ext: `subjectAltName=URI:${SPIFFE_BILLING}\nextendedKeyUsage=clientAuth` },
  /** Signed by the trusted CA, mapped to nothing. */
  unmapped: { name: 'unmapped', ca: 'ca', cn: 'stranger', ext: 'subjectAltName=URI:spiffe://example.org/ns/other/sa/stranger\nextendedKeyUsage=clientAuth' },
  /** The same names as `mapped`, signed by a CA the gateway does not trust. */
  forged: { name: 'forged', ca: 'other-ca', cn: 'billing-client', ext: `subjectAltName=URI:${SPIFFE_BILLING}\nextendedKeyUsage=clientAuth` },
} satisfies Record<string, LeafSpec>;

export interface TestPki {
  dir: string;
  /** Absolute path of a file in the PKI directory (it need not exist). */
  file(name: string): string;
  /** Contents of a PEM file. */
  pem(name: string): string;
  /** An undici agent trusting `ca.crt`, presenting `<client>.crt` when a client is named; closed at teardown. */
  agent(client: string | null): Agent;
}

export interface PkiOptions {
  /** Certificate authorities (self-signed) made first (default `ca` and `other-ca`). */
  cas?: string[];
  /** Also write keys the way libpq and pgjdbc want them: mode 0600, and PKCS#8 DER as `<name>.pk8`. */
  clientKeyFiles?: boolean;
  /** Write into this existing directory (the caller removes it) instead of a fresh temporary one. */
  dir?: string;
}

/** Makes the CAs and `leaves` in a fresh directory (removed, and the agents closed, at `t`'s teardown). */
export async function makeTestPki(t: TapTest, leaves: LeafSpec[], opts: PkiOptions = {}): Promise<TestPki> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'gh-pki-'));
  const agents: Agent[] = [];
  t.teardown(async () => {
    await Promise.all(agents.map((a) => a.close()));
    if (opts.dir === undefined) rmSync(dir, { recursive: true, force: true });
  });
  const ssl = (...args: string[]) => run('openssl', args, { cwd: dir });
  const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  for (const ca of opts.cas ?? ['ca', 'other-ca']) {
    await ssl('req', '-x509', '-new', ...newKey, '-days', '2', '-subj', `/CN=${ca}`, '-keyout', `${ca}.key`, '-out', `${ca}.crt`);
  }
  for (const { name, ca, cn, ext } of leaves) {
    writeFileSync(join(dir, `${name}.ext`), `basicConstraints=critical,CA:FALSE\n${ext}\n`);
    await ssl('req', '-new', ...newKey, '-subj', `/CN=${cn ?? name}`, '-keyout', `${name}.key`, '-out', `${name}.csr`);
    await ssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-days', '2', '-extfile', `${name}.ext`, '-out', `${name}.crt`);
    if (opts.clientKeyFiles) {
      // libpq refuses a key file others can read; pgjdbc reads client keys as PKCS#8 DER.
      chmodSync(join(dir, `${name}.key`), 0o600);
      await ssl('pkcs8', '-topk8', '-nocrypt', '-inform', 'PEM', '-outform', 'DER', '-in', `${name}.key`, '-out', `${name}.pk8`);
      chmodSync(join(dir, `${name}.pk8`), 0o600);
    }
  }
  const file = (name: string) => join(dir, name);
  const pem = (name: string) => readFileSync(file(name), 'utf8');
  return {
    dir,
    file,
    pem,
    agent(client) {
      const a = new Agent({ connect: { ca: pem('ca.crt'), ...(client ? { cert: pem(`${client}.crt`), key: pem(`${client}.key`) } : {}) } });
      agents.push(a);
      return a;
    },
  };
}
