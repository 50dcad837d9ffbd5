/**
 * Starts a real, in-process gateway for an end-to-end test: a fresh data_dir, the admin
 * server and every listener on free ports, and a fixed set of development identities.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig, splitHostPort } from '@gatehouse/core';
import { connectorModules, startGateway, type Gateway } from '@gatehouse/gateway';

/** Development tokens of the test identities (static tokens; ≥ 16 characters). */
export const TOKENS = {
  /** svc:billing in group payments — the ordinary caller. */
  billing: 'tok-billing-0123456789abcdef',
  /** svc:analytics in groups payments and analysts — exempt from some masking in tests. */
  analyst: 'tok-analyst-0123456789abcdef',
  /** svc:vendor in group contractors. */
  contractor: 'tok-contractor-0123456789abcdef',
  /** alice in group security (auditor role). */
  auditor: 'tok-auditor-0123456789abcdef',
  /** root in group platform (admin role). */
  admin: 'tok-admin-0123456789abcdef',
  /** bob in no group at all. */
  nobody: 'tok-nobody-0123456789abcdef',
} as const;

const IDENTITY = `
identity:
  static_tokens:
    - { token: "${TOKENS.billing}", subject: "svc:billing", groups: [payments] }
    - { token: "${TOKENS.analyst}", subject: "svc:analytics", groups: [payments, analysts] }
    - { token: "${TOKENS.contractor}", subject: "svc:vendor", groups: [payments, contractors] }
    - { token: "${TOKENS.auditor}", subject: "alice", groups: [security] }
    - { token: "${TOKENS.admin}", subject: "root", groups: [platform] }
    - { token: "${TOKENS.nobody}", subject: "bob", groups: [] }
  roles:
    admin: { groups: [platform] }
    auditor: { groups: [security] }
`;

export interface ConnectorYaml {
  type: string;
  name: string;
  /** The `upstream:` value: a flow mapping, or block lines indented under it. */
  upstream: string;
  /** Default `[ { groups: [payments] } ]`. */
  allow?: string;
  /** Rule flow mappings, one a line. */
  rules?: string[];
  /** Masking rule flow mappings, one a line. */
  masking?: string[];
  /** Further `key: value` lines of the connector (tls, startup_timeout, …). */
  extra?: string[];
}

/** One item of `connectors:`, listening on a free port. */
export function connectorYaml(c: ConnectorYaml): string {
  const lines = [`  - name: ${c.name}`, `    type: ${c.type}`, '    listen: 127.0.0.1:0', ...(c.extra ?? []).map((l) => `    ${l}`)];
  lines.push(c.upstream.startsWith('{') ? `    upstream: ${c.upstream}` : `    upstream:\n${c.upstream}`);
  lines.push(`    allow: ${c.allow ?? '[ { groups: [payments] } ]'}`);
  if (c.rules?.length) lines.push('    rules:', ...c.rules.map((r) => `      - ${r}`));
  if (c.masking?.length) lines.push('    masking:', ...c.masking.map((m) => `      - ${m}`));
  return lines.join('\n');
}

/** The `audit:` and `connectors:` sections of a test gateway's YAML. */
export function connectorsYaml(connectors: string[], audit = '{ durability: strict }'): string {
  return `audit: ${audit}\nconnectors:\n${connectors.join('\n')}\n`;
}

export interface TestGateway {
  gw: Gateway;
  dataDir: string;
  /** Bound host and port of a connector. */
  address(connector: string): { host: string; port: number };
  /** Base URL of an HTTP connector (`https` when it serves TLS). */
  url(connector: string, scheme?: 'http' | 'https'): string;
  /** Base URL of the admin server. */
  adminUrl: string;
  stop(): Promise<void>;
}

export interface TestGatewayOptions {
  /** YAML for everything but data_dir and admin (and identity, unless you give one). */
  yaml: string;
  env?: Record<string, string>;
  logLevel?: string;
}

export async function startTestGateway(opts: TestGatewayOptions): Promise<TestGateway> {
  const dataDir = mkdtempSync(join(tmpdir(), 'gh-e2e-'));
  const text = `data_dir: ${JSON.stringify(dataDir)}\nadmin: { listen: 127.0.0.1:0 }\n${/^identity:/m.test(opts.yaml) ? '' : IDENTITY}\n${opts.yaml}`;
  const parsed = parseConfig(text, 'test.yaml', { env: { ...process.env, ...opts.env }, connectors: connectorModules });
  const gw = parsed.ok
    ? await startGateway(parsed.value, { logLevel: opts.logLevel ?? process.env.GATEHOUSE_TEST_LOG ?? 'silent' }).catch((e: Error) => e)
    : new Error(parsed.error.message);
  if (gw instanceof Error) {
    rmSync(dataDir, { recursive: true, force: true });
    throw gw;
  }
  const address = (name: string) => {
    const a = gw.addresses.get(name);
    if (!a) throw new Error(`no connector ${name}`);
    return splitHostPort(a);
  };
  return {
    gw,
    dataDir,
    adminUrl: gw.adminUrl,
    address,
    url(name, scheme = 'http') {
      const { host, port } = address(name);
      return `${scheme}://${host}:${port}`;
    },
    async stop() {
      await gw.stop(2_000);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
