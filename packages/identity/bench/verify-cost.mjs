// Cost of one authenticate(): cache hit vs. full ES256/RS256 verification vs. static token.
// Run after building: node packages/identity/bench/verify-cost.mjs  (prints JSON + a table)
import { createServer } from 'node:http';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { createAuthenticator } from '../dist/src/index.js';

const N = Number(process.env.N ?? 20000);
const keys = {};
for (const alg of ['ES256', 'RS256', 'EdDSA']) {
  const { publicKey, privateKey } = await generateKeyPair(alg);
  keys[alg] = { privateKey, jwk: { ...(await exportJWK(publicKey)), kid: alg, alg } };
}
const body = JSON.stringify({ keys: Object.values(keys).map((k) => k.jwk) });
const server = createServer((_q, s) => s.end(body)).listen(0, '127.0.0.1');
await new Promise((r) => server.once('listening', r));
const issuer = `http://127.0.0.1:${server.address().port}`;
const config = (cacheEntries) => [
  {
    oidc: [{ issuer, audience: 'gatehouse', jwks_url: `${issuer}/jwks`, groups_claim: 'groups', algorithms: ['ES256', 'RS256', 'EdDSA'], clock_tolerance: 30 }],
    static_tokens: [{ token: 'dev-token-0123456789abcdef', subject: 'dev', groups: [] }],
    roles: {},
  },
  { cacheEntries },
];
const tokenFor = (alg) =>
  new SignJWT({ sub: 'svc:a', groups: ['payments'] })
    .setProtectedHeader({ alg, kid: alg })
    .setIssuer(issuer)
    .setAudience('gatehouse')
    .setExpirationTime('1h')
    .sign(keys[alg].privateKey);

async function measure(auth, token) {
  if (!(await auth.authenticate(token)).ok) throw new Error('token rejected');
  for (let i = 0; i < N / 4; i++) await auth.authenticate(token); // warm up the JIT
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) await auth.authenticate(token);
  return Number(process.hrtime.bigint() - t0) / N / 1000; // µs per call
}
const results = {};
const cached = createAuthenticator(...config(10000));
const uncached = createAuthenticator(...config(0));
for (const alg of ['ES256', 'RS256', 'EdDSA']) {
  const tok = await tokenFor(alg);
  results[`${alg} cache hit`] = await measure(cached, tok);
  results[`${alg} full verify`] = await measure(uncached, tok);
}
results['static token'] = await measure(cached, 'dev-token-0123456789abcdef');
cached.close();
uncached.close();
server.close();
console.log(JSON.stringify({ n: N, node: process.version, usPerCall: results }));
console.table(Object.fromEntries(Object.entries(results).map(([k, v]) => [k, { 'µs/call': v.toFixed(2) }])));
