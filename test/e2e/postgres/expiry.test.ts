/**
 * A connection outlives its token: a PostgreSQL session authenticated with a short-lived JWT
 * from a real OpenID Provider (oidc-provider, client credentials) may run statements until
 * the token's `exp` (plus the issuer's clock tolerance) and nothing after it — the next
 * statement is refused naming the rule and audited, and a fresh connection with a fresh token
 * works again.
 */
import t from 'tap';
import { readEvents } from '@gatehouse/audit';
import { startTestGateway } from '../../lib/gateway.js';
// The identity package's own test provider: a real oidc-provider issuing JWT access tokens.
import { AUDIENCE, startProvider } from '@gatehouse/identity/testing';
import { createTestDb, gatewayClient } from './pg-env.js';

const TTL_SECONDS = 2;

t.test('statements are refused once the caller token has expired', async (t) => {
  const idp = await startProvider({ accessTokenTTL: TTL_SECONDS });
  t.teardown(() => idp.close());
  const db = await createTestDb('expiry');
  t.teardown(() => db.drop());
  const tg = await startTestGateway({
    yaml: `
identity:
  oidc:
    - { issuer: "${idp.issuer}", audience: ${AUDIENCE}, algorithms: [ES256], clock_tolerance: 0 }
audit: { durability: strict }
connectors:
  - name: db
    type: postgres
    listen: 127.0.0.1:0
    upstream: { address: 127.0.0.1:5432, database: ${db.database}, user: ${db.role}, sslmode: disable }
    allow: [ { groups: [payments] } ]
`,
  });
  t.teardown(() => tg.stop());

  const token = await idp.token('svc-billing');
  const exp = (JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8')) as { exp: number }).exp;
  const c = await gatewayClient(tg.address('db'), token);
  t.teardown(() => c.end().catch(() => {}));
  t.equal((await c.query<{ one: number }>('SELECT 1 AS one')).rows[0].one, 1, 'allowed while the token is valid');

  // Past exp (whole seconds): wait until the clock is beyond it.
  await new Promise((r) => setTimeout(r, Math.max(0, exp * 1000 - Date.now()) + 300));
  const refused = await c.query('SELECT 2').then(
    () => null,
    (e: Error) => e,
  );
  t.ok(refused, 'the statement after exp is refused');
  t.match(refused?.message, /credential expired at .*reconnect with a fresh one/);
  t.match(refused?.message, /credential-expired/);

  const units = readEvents(tg.dataDir, { kind: 'unit' });
  t.match(units.at(-1), { decision: { action: 'deny', rule: 'credential-expired' }, unit: { text: 'SELECT 2' }, identity: { subject: 'svc-billing' } });

  const fresh = await gatewayClient(tg.address('db'), await idp.token('svc-billing'));
  t.teardown(() => fresh.end().catch(() => {}));
  t.equal((await fresh.query<{ three: number }>('SELECT 3 AS three')).rows[0].three, 3, 'a fresh token on a new connection works');
});
