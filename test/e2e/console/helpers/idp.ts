/**
 * A real OpenID Provider (oidc-provider 9) in-process on a free port, for people: the
 * console is a confidential authorization-code client (PKCE), and the provider's own
 * development login and consent pages are the sign-in form a test fills in with Chromium.
 * Any password is accepted; the login name picks the account and its groups (USERS).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';

/** Login name → groups in the ID token (`identity.roles` of the console tests map them). */
export const USERS: Record<string, string[]> = {
  rita: ['dba'], // reviewer
  alice: ['security'], // auditor
  root: ['platform'], // admin
  bob: ['sales'], // no role
};

export const CONSOLE_CLIENT = { id: 'gatehouse-console', secret: 'console-secret-0123456789abcdef' };

export interface TestIdp {
  issuer: string;
  /** How many token requests the provider answered (a code redeemed). */
  tokenRequests(): number;
  close(): Promise<void>;
}

export async function startIdp(redirectUrl: string): Promise<TestIdp> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), kid: 'idp-es256', alg: 'ES256', use: 'sig' };
  const provider = new Provider(issuer, {
    jwks: { keys: [jwk] },
    cookies: { keys: ['console-test-cookie-key-0123456789'] },
    clients: [
      {
        client_id: CONSOLE_CLIENT.id,
        client_secret: CONSOLE_CLIENT.secret,
        redirect_uris: [redirectUrl],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_post',
        id_token_signed_response_alg: 'ES256',
      },
    ],
    // groups released with the openid scope, and (not conforming) put into the ID token itself.
    claims: { openid: ['sub', 'groups'] },
    conformIdTokenClaims: false,
    features: { devInteractions: { enabled: true } },
    findAccount: (_ctx: unknown, id: string) =>
      Promise.resolve({
        accountId: id,
        claims: () => Promise.resolve({ sub: id, groups: USERS[id] ?? [] }),
      }),
  });
  provider.on('server_error', () => {});
  let tokens = 0;
  const handle = provider.callback();
  server.on('request', (req, res) => {
    if (req.url === '/token') tokens++;
    handle(req, res);
  });
  return {
    issuer,
    tokenRequests: () => tokens,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
