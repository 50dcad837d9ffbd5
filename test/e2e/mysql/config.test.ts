/**
 * Every key a `type: mysql` connector accepts works, and what would be silently ignored is
 * refused at load: `upstream.by_group` (the database's own grants back the gateway),
 * `max_prepared_statements`, `max_result_message_bytes`, `on_parse_error: allow`; refusals of
 * a CA without verify-full, JSON-path masking, unknown keys and `review:`.
 */
import t from 'tap';
import { parseConfig } from '@gatehouse/core';
import { connectorModules } from '@gatehouse/gateway';
import { startTestGateway, TOKENS } from '../../lib/gateway.js';
import { createTestDb, direct, gatewayConn, ROOT } from './my-env.js';
import mysql from 'mysql2/promise';

const base = (extra: string, upstream = '{ address: 127.0.0.1:3306, database: d, user: u }') => `
data_dir: /tmp/gh-unused
identity: { static_tokens: [ { token: "tok-0123456789abcdef", subject: s } ] }
connectors:
  - name: my
    type: mysql
    listen: 127.0.0.1:0
    upstream: ${upstream}
${extra}`;

t.test('refused at load', async (t) => {
  const load = (yaml: string) => parseConfig(yaml, 'test.yaml', { env: {}, connectors: connectorModules });
  t.ok(load(base('')).ok, 'a minimal connector loads');
  const ok = load(base(''));
  if (ok.ok) {
    const c = ok.value.connectors[0] as unknown as { upstream: { tls: { mode: string } }; masking_mode: string; max_message_bytes: number };
    t.same([c.upstream.tls.mode, c.masking_mode, c.max_message_bytes], ['prefer', 'restricted', 64 * 1024 * 1024], 'defaults');
  }
  const cases: [string, string, RegExp][] = [
    ['', '{ address: 127.0.0.1:3306, database: d, user: u, tls: { mode: prefer, ca: /x.pem } }', /ca is used only with mode: verify-full/],
    ['    masking: [ { json: ["$.a"], with: redact } ]', undefined as unknown as string, /json paths apply to HTTP bodies/],
    ['', '{ address: 127.0.0.1:3306, database: d, user: u, sslmode: require }', /sslmode/],
    ['    review: { approvers: [x] }', undefined as unknown as string, /connectors\[0\]\.review: missing required key "reviewers"/],
    ['    review: { reviewers: { groups: [dba] } }', undefined as unknown as string, /connectors\[0\]\.review: has no effect: no rule of this connector has action: review/],
    ['    max_message_bytes: 10', undefined as unknown as string, /max_message_bytes/],
  ];
  for (const [extra, upstream, why] of cases) {
    const r = load(base(extra, upstream));
    t.notOk(r.ok, String(why));
    if (!r.ok) t.match(r.error.message, why);
  }
});

t.test('by_group, limits and on_parse_error: allow, against the local MariaDB', async (t) => {
  const db = await createTestDb('mycfg');
  const masked = `${db.user}_m`;
  const root = await mysql.createConnection(ROOT);
  await direct(
    db,
    `CREATE TABLE cards (id INT PRIMARY KEY, holder VARCHAR(20), card_number VARCHAR(32), big MEDIUMTEXT); INSERT INTO cards VALUES (1, 'Ada', '4111111111111111', REPEAT('x', 100000))`,
  );
  await root.query(`CREATE USER '${masked}'@'%' IDENTIFIED BY '${db.password}'`);
  await root.query(`GRANT SELECT (id, holder) ON \`${db.database}\`.cards TO '${masked}'@'%'`);
  const tg = await startTestGateway({
    env: { PW: db.password },
    yaml: `
connectors:
  - name: my
    type: mysql
    listen: 127.0.0.1:0
    upstream:
      address: 127.0.0.1:3306
      database: ${db.database}
      user: ${db.user}
      password: "\${env:PW}"
      by_group: [ { groups: [contractors], user: ${masked}, password: "\${env:PW}" } ]
    allow: [ { groups: [payments] } ]
    max_prepared_statements: 2
    max_result_message_bytes: 65536
    on_parse_error: allow
`,
  });
  t.teardown(async () => {
    await tg.stop();
    await root.query(`DROP USER IF EXISTS '${masked}'@'%'`);
    await root.end();
    await db.drop();
  });
  const addr = tg.address('my');

  t.test('upstream.by_group: a contractor logs in as the role with column grants; MariaDB refuses the column', async (t) => {
    const c = await gatewayConn(addr, TOKENS.contractor);
    t.same((await c.query('SELECT holder FROM cards'))[0], [{ holder: 'Ada' }]);
    await t.rejects(c.query('SELECT card_number FROM cards'), { errno: 1143, message: /denied/ });
    await c.end();
    const b = await gatewayConn(addr, TOKENS.billing);
    t.same((await b.query('SELECT card_number FROM cards'))[0], [{ card_number: '4111111111111111' }], 'billing uses the connector credential');
    await b.end();
  });

  t.test('max_prepared_statements: the next PREPARE is refused, the session continues', async (t) => {
    const c = await gatewayConn(addr, TOKENS.billing);
    await c.prepare('SELECT 1');
    await c.prepare('SELECT 2');
    await t.rejects(c.prepare('SELECT 3'), { errno: 1461, message: /too many prepared statements/ });
    c.unprepare('SELECT 1');
    await c.prepare('SELECT 4');
    t.same((await c.query('SELECT 5 AS five'))[0], [{ five: 5 }]);
    await c.end();
  });

  t.test('max_result_message_bytes: a larger row ends the session; smaller ones pass', async (t) => {
    const c = await gatewayConn(addr, TOKENS.billing);
    t.same((await c.query('SELECT LENGTH(big) AS n FROM cards'))[0], [{ n: 100000 }]);
    await t.rejects(c.query('SELECT big FROM cards'), { message: /max_result_message_bytes/ });
    c.destroy();
  });

  t.test('on_parse_error: allow lets text the classifier cannot read reach the server', async (t) => {
    const c = await gatewayConn(addr, TOKENS.billing);
    await t.rejects(c.query('SELEC nonsense'), { errno: 1064, message: /SQL syntax/ }, "MariaDB's own syntax error, not a refusal");
    await c.end();
  });
});
