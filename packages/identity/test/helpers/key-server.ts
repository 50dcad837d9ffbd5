/**
 * A node:http server publishing a JWKS (and an OIDC discovery document) whose keys the
 * test controls: publish, rotate, fail, hang. Counts every fetch, so the tests can see
 * exactly when the authenticator went to the network.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';

export interface SigningKey {
  kid: string;
  alg: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

export async function makeKey(kid: string, alg: 'ES256' | 'RS256' | 'EdDSA' = 'ES256'): Promise<SigningKey> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  return { kid, alg, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

export async function sign(key: SigningKey, claims: JWTPayload, header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT', ...header }).sign(key.privateKey);
}

export interface KeyServer {
  /** Base URL, used as the issuer. */
  issuer: string;
  jwksUrl: string;
  jwksFetches(): number;
  discoveryFetches(): number;
  publish(keys: SigningKey[]): void;
  /** Non-200 status for /jwks (0 = serve normally). */
  failWith(status: number): void;
  /** Accept /jwks requests and never answer. */
  hang(on: boolean): void;
  /** Issuer named by the discovery document (default: the real one). */
  discoveryIssuer(name: string): void;
  close(): Promise<void>;
}

export async function startKeyServer(): Promise<KeyServer> {
  let keys: SigningKey[] = [];
  let jwks = 0;
  let discovery = 0;
  let status = 0;
  let hanging = false;
  let named: string | null = null;
  const server: Server = createServer((req, res) => {
    if (req.url === '/jwks') {
      jwks++;
      if (hanging) return;
      if (status) return send(res, status, { error: 'unavailable' });
      return send(res, 200, { keys: keys.map((k) => k.publicJwk) });
    }
    if (req.url === '/.well-known/openid-configuration') {
      discovery++;
      return send(res, 200, { issuer: named ?? issuer, jwks_uri: `${issuer}/jwks` });
    }
    send(res, 404, { error: 'not found' });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    issuer,
    jwksUrl: `${issuer}/jwks`,
    jwksFetches: () => jwks,
    discoveryFetches: () => discovery,
    publish: (k) => {
      keys = k;
    },
    failWith: (s) => {
      status = s;
    },
    hang: (on) => {
      hanging = on;
    },
    discoveryIssuer: (name) => {
      named = name;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** A clock the test moves by hand; seconds helper for JWT claims. */
export function testClock(start = Date.now()) {
  const c = {
    t: start,
    now: () => c.t,
    advance: (ms: number) => {
      c.t += ms;
    },
    sec: (offset = 0) => Math.floor(c.t / 1000) + offset,
  };
  return c;
}
