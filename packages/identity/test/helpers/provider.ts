/**
 * A real OpenID Provider (oidc-provider 9) in-process on a free port: the
 * client-credentials grant with a resource indicator yields JWT access tokens whose
 * audience is `gatehouse` and which carry a `groups` claim. Counts JWKS fetches.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';

export interface TestProvider {
  issuer: string;
  /** How many times /jwks was fetched. */
  jwksFetches(): number;
  discoveryFetches(): number;
  /** A fresh access token for a client, obtained over HTTP from the token endpoint. */
  token(clientId: string, resource?: string): Promise<string>;
  close(): Promise<void>;
}

export const CLIENTS: Record<string, { secret: string; groups: string[] }> = {
  'svc-billing': { secret: 'billing-secret-0123456789', groups: ['payments', 'billing'] },
  'svc-reporting': { secret: 'reporting-secret-0123456789', groups: ['analytics'] },
};

export const RESOURCE = 'urn:gatehouse';
export const AUDIENCE = 'gatehouse';

export async function startProvider(opts: { accessTokenTTL?: number } = {}): Promise<TestProvider> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), kid: 'provider-es256', alg: 'ES256', use: 'sig' };
  const provider = new Provider(issuer, {
    jwks: { keys: [jwk] },
    clients: Object.entries(CLIENTS).map(([client_id, c]) => ({
      client_id,
      client_secret: c.secret,
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      id_token_signed_response_alg: 'ES256',
    })),
    features: {
      clientCredentials: { enabled: true },
      devInteractions: { enabled: false },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => RESOURCE,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx: unknown, resource: string) => {
          if (resource !== RESOURCE && resource !== 'urn:other') throw new Error('unknown resource');
          return {
            scope: 'connect',
            audience: resource === RESOURCE ? AUDIENCE : 'someone-else',
            accessTokenFormat: 'jwt',
            accessTokenTTL: opts.accessTokenTTL ?? 300,
            jwt: { sign: { alg: 'ES256' } },
          };
        },
      },
    },
    extraTokenClaims: (_ctx: unknown, token: { clientId?: string }) => ({ groups: CLIENTS[token.clientId ?? '']?.groups ?? [] }),
  });
  provider.on('server_error', () => {});
  let jwks = 0;
  let discovery = 0;
  const handle = provider.callback();
  server.on('request', (req, res) => {
    if (req.url === '/jwks') jwks++;
    if (req.url === '/.well-known/openid-configuration') discovery++;
    handle(req, res);
  });
  return {
    issuer,
    jwksFetches: () => jwks,
    discoveryFetches: () => discovery,
    async token(clientId, resource = RESOURCE) {
      const c = CLIENTS[clientId];
      const res = await fetch(`${issuer}/token`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: 'Basic ' + Buffer.from(`${clientId}:${c.secret}`).toString('base64'),
        },
        body: new URLSearchParams({ grant_type: 'client_credentials', resource, scope: 'connect' }),
      });
      const body = (await res.json()) as { access_token?: string; error?: string; error_description?: string };
      if (!body.access_token) throw new Error(`token endpoint: ${res.status} ${body.error} ${body.error_description}`);
      return body.access_token;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
