/**
 * A real gateway with the console switched on, in front of a real IdP: the admin server on
 * a port chosen up front (the redirect URL registered at the IdP must name it), identities
 * with every console role, and whatever connectors a test adds.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig, splitHostPort } from '@gatehouse/core';
import { connectorModules, startGateway, type Gateway } from '@gatehouse/gateway';
import { freePort } from '../../../lib/net.js';
import { CONSOLE_CLIENT, startIdp, type TestIdp } from './idp.js';

/** Static tokens of the services and people that do not sign in through the browser. */
export const TOKENS = {
  billing: 'tok-billing-0123456789abcdef',
  auditor: 'tok-auditor-0123456789abcdef',
  reviewer: 'tok-reviewer-0123456789abcdef',
  admin: 'tok-admin-0123456789abcdef',
} as const;

export interface ConsoleGateway {
  gw: Gateway;
  idp: TestIdp;
  dataDir: string;
  /** http://127.0.0.1:PORT */
  origin: string;
  address(connector: string): { host: string; port: number };
  stop(): Promise<void>;
}

export async function startConsoleGateway(opts: { yaml?: string; env?: Record<string, string> } = {}): Promise<ConsoleGateway> {
  const dataDir = mkdtempSync(join(tmpdir(), 'gh-console-'));
  let port = await freePort();
  let origin = `http://127.0.0.1:${port}`;
  const idp = await startIdp(`${origin}/ui/callback`);
  const text = (p: number) => `data_dir: ${JSON.stringify(dataDir)}
admin: { listen: 127.0.0.1:${p} }
identity:
  static_tokens:
    - { token: "${TOKENS.billing}", subject: "svc:billing", groups: [payments] }
    - { token: "${TOKENS.auditor}", subject: "alice-token", groups: [security] }
    - { token: "${TOKENS.reviewer}", subject: "rita-token", groups: [dba] }
    - { token: "${TOKENS.admin}", subject: "root-token", groups: [platform] }
  roles:
    admin: { groups: [platform] }
    reviewer: { groups: [dba] }
    auditor: { groups: [security] }
console:
  oidc: { issuer: "${idp.issuer}", client_id: ${CONSOLE_CLIENT.id}, client_secret: "\${env:CONSOLE_SECRET}", redirect_url: "http://127.0.0.1:${p}/ui/callback" }
${opts.yaml ?? 'connectors: []\n'}`;
  const env = { ...process.env, CONSOLE_SECRET: CONSOLE_CLIENT.secret, ...opts.env };
  const parsed = parseConfig(text(port), 'console-test.yaml', { env, connectors: connectorModules });
  if (!parsed.ok) {
    await idp.close();
    rmSync(dataDir, { recursive: true, force: true });
    throw new Error(parsed.error.message);
  }
  let gw: Gateway;
  try {
    gw = await startGateway(parsed.value, { logLevel: process.env.GATEHOUSE_TEST_LOG ?? 'silent' });
  } catch (e) {
    await idp.close();
    rmSync(dataDir, { recursive: true, force: true });
    throw e;
  }
  port = splitHostPort(gw.admin).port;
  origin = `http://127.0.0.1:${port}`;
  return {
    gw,
    idp,
    dataDir,
    origin,
    address(name) {
      const a = gw.addresses.get(name);
      if (!a) throw new Error(`no connector ${name}`);
      return splitHostPort(a);
    },
    async stop() {
      await gw.stop(2_000);
      await idp.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
