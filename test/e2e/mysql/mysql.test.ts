/**
 * The MySQL connector end to end: a real gateway (static-token identity, policy, masking,
 * strict audit) in front of the local MariaDB, driven by the real `mariadb` CLI and mysql2
 * (`query`: text protocol; `execute`: prepared statements, binary protocol).
 */
import t from 'tap';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { readEvents } from '@gatehouse/audit';
import { startTestGateway, TOKENS } from '../../lib/gateway.js';
import { createTestDb, direct, gatewayConn, mariadb, TLS } from './my-env.js';
import { errText, isEofOrErr, isErr, query, RawClient } from './raw-client.js';

const CARD = '4111111111111111';
const CARD2 = '5500000000000004';
const EMAIL = 'ada@example.com';

t.test('mysql connector in front of the local MariaDB', async (t) => {
  const db = await createTestDb('myc');
  const tg = await startTestGateway({
    env: { MYSQL_PASSWORD: db.password },
    yaml: `
audit: { durability: strict }
connectors:
  - name: orders-db
    type: mysql
    listen: 127.0.0.1:0
    upstream: { address: 127.0.0.1:3306, database: ${db.database}, user: ${db.user}, password: "\${env:MYSQL_PASSWORD}", tls: { mode: prefer } }
    allow: [ { groups: [payments] } ]
    rules:
      - { name: imports, match: { statement: [copy], tables: [imports] }, when: '"analysts" in identity.groups', action: allow }
      - { name: no-ddl, match: { statement: [drop, truncate] }, action: deny }
      - { name: bulk-write, match: { statement: [delete, update], where: absent }, action: review }
      - { name: no-vault, match: { tables: ["vault", "*.vault"] }, action: deny }
    masking:
      - { columns: [card_number, account_no], with: last4, exempt: { groups: [analysts] } }
      - { detectors: [email, credit_card], with: redact, exempt: { groups: [analysts] } }
  - name: permissive-db
    type: mysql
    listen: 127.0.0.1:0
    upstream: { address: 127.0.0.1:3306, database: ${db.database}, user: ${db.user}, password: "\${env:MYSQL_PASSWORD}", tls: { mode: disable } }
    allow: [ { groups: [payments] } ]
    masking_mode: permissive
    masking:
      - { columns: [card_number], with: last4 }
`,
  });
  t.teardown(async () => {
    await tg.stop();
    await db.drop();
  });
  const addr = tg.address('orders-db');
  const perm = tg.address('permissive-db');
  await direct(
    db,
    `CREATE TABLE cards (id INT PRIMARY KEY, holder VARCHAR(40), card_number VARCHAR(32) UNIQUE, account_no BIGINT, note TEXT);
     INSERT INTO cards VALUES (1, 'Ada', '${CARD}', 9876543210, 'contact ${EMAIL} please'), (2, 'Bob', '${CARD2}', 1234567890, 'no pii here');
     CREATE TABLE vault (id INT);
     CREATE TABLE imports (id INT, name VARCHAR(20));
     CREATE VIEW card_view AS SELECT id, card_number AS cn FROM cards;
     CREATE VIEW safe_view AS SELECT id, holder FROM cards;
     CREATE FUNCTION twice(x INT) RETURNS INT DETERMINISTIC RETURN x * 2;`,
  );

  t.test('login over TLS with the token: mysql2 (ssl) and the mariadb CLI (--ssl)', async (t) => {
    const c = await gatewayConn(addr, TOKENS.billing, { ...TLS, database: db.database });
    const [rows] = await c.query('SELECT 1 AS one');
    t.same(rows, [{ one: 1 }]);
    await c.end();
    const cli = await mariadb(addr, TOKENS.billing, ['--ssl', db.database, '-e', 'SELECT holder FROM cards ORDER BY id; SELECT DATABASE()']);
    t.equal(cli.code, 0, cli.stderr);
    t.same(cli.stdout.trim().split('\n'), ['Ada', 'Bob', db.database]);
  });

  t.test('on loopback without TLS: caching_sha2_password with the RSA key exchange (mysql2, mariadb CLI)', async (t) => {
    const c = await gatewayConn(addr, TOKENS.billing, { database: db.database });
    t.same((await c.query('SELECT 2 AS two'))[0], [{ two: 2 }]);
    await c.end();
    const cli = await mariadb(addr, TOKENS.billing, ['-e', 'SELECT 3']);
    t.equal(cli.code, 0, cli.stderr);
    t.equal(cli.stdout.trim(), '3');
  });

  t.test('a bad token or an identity not allowed here is refused with 1045 and the reason', async (t) => {
    await t.rejects(gatewayConn(addr, 'not-a-valid-token-at-all', TLS), { message: /gatehouse/ });
    await t.rejects(gatewayConn(addr, TOKENS.nobody, TLS), { errno: 1045, message: /may not use connector/ });
    const cli = await mariadb(addr, '', ['--ssl', '-e', 'SELECT 1']);
    t.not(cli.code, 0);
    t.match(cli.stderr, /token is required/);
  });

  t.test('policy: deny and review refusals name the rule; the session continues', async (t) => {
    const c = await gatewayConn(addr, TOKENS.billing, { ...TLS, database: db.database, multipleStatements: true });
    await t.rejects(c.query('DROP TABLE cards'), { errno: 1142, sqlState: '42000', message: /denied by rule "no-ddl"/ });
    await t.rejects(c.query('DELETE FROM cards'), { errno: 1142, message: /bulk-write/ });
    await t.rejects(c.query('UPDATE cards SET holder = holder WHERE 1 = 1'), { message: /bulk-write/ }, 'a trivial WHERE is no WHERE');
    await t.rejects(c.query('SELECT * FROM vault'), { message: /no-vault/ });
    await t.rejects(c.query('SELECT 1; DROP TABLE cards'), { message: /no-ddl/ }, 'one refusal refuses the whole text');
    await t.rejects(c.execute('TRUNCATE TABLE cards'), { message: /no-ddl/ }, 'judged at PREPARE');
    await t.rejects(c.query('SELEC nonsense'), { errno: 1142, message: /parse-error/ });
    await t.rejects(c.query('SELECT 1 /*!, (SELECT 1 FROM vault) */'), { message: /no-vault/ }, 'executable comments are code');
    await t.rejects(c.query("PREPARE s FROM 'DROP TABLE cards'"), { message: /no-ddl/ });
    await t.rejects(c.query('SET @q = "DROP TABLE cards"; PREPARE s FROM @q'), { message: /opaque-procedure/ }, 'dynamic SQL is opaque');
    await t.rejects(c.query('CREATE PROCEDURE p() BEGIN DROP TABLE cards; END'), { message: /no-ddl|opaque-procedure/ });
    await t.rejects(c.query("LOAD DATA LOCAL INFILE '/etc/hostname' INTO TABLE vault"), { message: /load-data-local|no-vault/ });
    const [rows] = await c.query('SELECT COUNT(*) AS n FROM cards');
    t.same(rows, [{ n: 2 }], 'nothing refused ran; the session is usable');
    await c.end();
    const cli = await mariadb(addr, TOKENS.billing, ['--ssl', db.database, '-e', 'DROP TABLE cards']);
    t.match(cli.stderr, /ERROR 1142 \(42000\).*denied by rule "no-ddl"/);
  });

  t.test('masking by origin: text and binary rows, aliases, exempt callers', async (t) => {
    const c = await gatewayConn(addr, TOKENS.billing, { ...TLS, database: db.database });
    const [text] = await c.query('SELECT id, card_number, c.card_number AS x, note, account_no FROM cards c ORDER BY id');
    t.same(text, [
      { id: 1, card_number: '************1111', x: '************1111', note: 'contact [REDACTED] please', account_no: null },
      { id: 2, card_number: '************0004', x: '************0004', note: 'no pii here', account_no: null },
    ]);
    const [bin] = await c.execute('SELECT id, card_number AS y, account_no, note FROM cards WHERE id = ?', [1]);
    t.same(
      bin,
      [{ id: 1, y: '************1111', account_no: null, note: 'contact [REDACTED] please' }],
      'a BIGINT that cannot hold the mask is NULL (as in text rows: a client would parse the masked text as a number)',
    );
    const [star] = await c.execute('SELECT * FROM cards WHERE id > ? ORDER BY id', [0]);
    t.equal((star as { card_number: string }[])[1].card_number, '************0004');
    const [view] = await c.query('SELECT id, holder FROM safe_view ORDER BY id');
    t.equal((view as unknown[]).length, 2, 'a view without masked columns is allowed');
    await c.end();
    const a = await gatewayConn(addr, TOKENS.analyst, { ...TLS, database: db.database });
    const [clear] = await a.execute('SELECT card_number, account_no FROM cards WHERE id = ?', [1]);
    t.same(clear, [{ card_number: CARD, account_no: 9876543210 }], 'analysts are exempt');
    await a.end();
    const cli = await mariadb(addr, TOKENS.billing, ['--ssl', db.database, '-e', 'SELECT card_number AS z FROM cards WHERE id = 1']);
    t.equal(cli.stdout.trim(), '************1111');
  });

  t.test('restricted SQL: expressions and indirections over a masked column are refused, naming it', async (t) => {
    const c = await gatewayConn(addr, TOKENS.billing, { ...TLS, database: db.database });
    for (const sql of [
      'SELECT reverse(card_number) FROM cards',
      "SELECT id FROM cards WHERE card_number LIKE '4%'",
      'SELECT card_number FROM cards ORDER BY card_number',
      'SELECT card_number FROM cards ORDER BY 1',
      'SELECT substr(card_number, 1, 6) AS bin FROM cards',
      'SELECT card_number + 0 FROM cards',
      'SELECT CONCAT(card_number) FROM cards',
      'SELECT x.card_number FROM (SELECT card_number FROM cards) x',
      'SELECT * FROM (SELECT * FROM cards) x',
      'WITH t AS (SELECT * FROM cards) SELECT card_number FROM t',
      'SELECT card_number FROM cards UNION SELECT holder FROM cards',
      'SELECT card_number INTO @x FROM cards LIMIT 1',
      'SELECT cn FROM card_view',
      'SELECT twice(id) FROM cards',
      'SELECT /*! reverse( */ card_number /*! ) */ FROM cards',
      'SELECT GROUP_CONCAT(card_number) FROM cards',
      'CREATE TABLE copy_cards AS SELECT card_number FROM cards',
      "SELECT LOAD_FILE('/etc/hostname')",
    ]) {
      await t.rejects(c.query(sql), { errno: 1142, message: /masking-restricted/ }, sql);
    }
    await t.rejects(c.execute('SELECT upper(card_number) FROM cards WHERE id = ?', [1]), { message: /column "card_number" is masked/ }, 'also at PREPARE');
    t.same((await c.query('SELECT card_number FROM cards WHERE id = 1'))[0], [{ card_number: '************1111' }], 'a bare column still works');
    await c.end();
  });

  t.test('errors and warnings are masked (ERR packets; SHOW WARNINGS rows are rows)', async (t) => {
    const c = await gatewayConn(perm, TOKENS.billing, { database: db.database });
    const e = await c.query(`INSERT INTO cards (id, card_number) VALUES (9, '${CARD}')`).catch((x: Error) => x);
    t.ok(e instanceof Error);
    t.match((e as Error).message, /Duplicate entry '\[masked\]'/);
    t.notMatch((e as Error).message, CARD);
    const [rev] = await c.query('SELECT reverse(card_number) AS r FROM cards WHERE id = 2');
    t.same(rev, [{ r: '4000000000000055' }], 'permissive: expressions run (and are not traced)');
    await c.query("UPDATE cards SET note = '4111-1111-1111-1111' WHERE id = 2");
    await c.query('SELECT CAST(note AS UNSIGNED) FROM cards WHERE id = 2');
    const [warnings] = await c.query('SHOW WARNINGS');
    const text = JSON.stringify(warnings);
    t.match(text, /Truncated incorrect/);
    t.notMatch(text, /4111-1111/, 'the value quoted in the warning is masked');
    await c.query("UPDATE cards SET note = 'no pii here' WHERE id = 2");
    await c.end();
  });

  t.test('prepared statements: parameters, re-execution, close; multi-result sets; COM_INIT_DB, ping, field list, cursors', async (t) => {
    const c = await gatewayConn(addr, TOKENS.billing, { ...TLS, database: db.database, multipleStatements: true });
    for (const id of [1, 2, 1]) {
      const [r] = await c.execute('SELECT holder FROM cards WHERE id = ?', [id]);
      t.same(r, [{ holder: id === 1 ? 'Ada' : 'Bob' }]);
    }
    await c.execute('INSERT INTO cards (id, holder, note) VALUES (?, ?, ?)', [3, 'Cy', `paid with ${CARD}`]);
    await c.execute('DELETE FROM cards WHERE id = ?', [3]);
    c.unprepare('SELECT holder FROM cards WHERE id = ?');
    const [multi] = await c.query('SELECT 1 AS a; SELECT holder FROM cards WHERE id = 2; SELECT card_number FROM cards WHERE id = 1');
    t.same(multi, [[{ a: 1 }], [{ holder: 'Bob' }], [{ card_number: '************1111' }]]);
    await c.ping();
    await c.end();
    // COM_INIT_DB: the CLI's `use` command.
    const cli = await mariadb(addr, TOKENS.billing, ['--ssl'], `use ${db.database}\nSELECT DATABASE();\n`);
    t.equal(cli.code, 0, cli.stderr);
    t.equal(cli.stdout.trim(), db.database);
    // COM_FIELD_LIST and COM_STMT_FETCH (a read-only cursor), with exact packets.
    const raw = await RawClient.login(addr, TOKENS.billing, { database: db.database });
    raw.send(Buffer.concat([Buffer.from([0x04]), Buffer.from('cards\0')]));
    const fields = await raw.until(isEofOrErr);
    t.equal(fields.length, 6, 'five column definitions and EOF');
    raw.send(Buffer.concat([Buffer.from([0x16]), Buffer.from('SELECT id, card_number FROM cards ORDER BY id')]));
    const prep = await raw.until((p) => p.payload[0] === 0xfe || isErr(p));
    t.equal(prep[0].payload[0], 0x00, errText(prep[0]));
    const id = prep[0].payload.readUInt32LE(1);
    const exec = Buffer.alloc(10);
    exec[0] = 0x17;
    exec.writeUInt32LE(id, 1);
    exec[5] = 1; // CURSOR_TYPE_READ_ONLY
    exec.writeUInt32LE(1, 6);
    raw.send(exec);
    const opened = await raw.until(isEofOrErr);
    t.ok(opened[opened.length - 1].payload.readUInt16LE(3) & 0x40, 'cursor opened (no rows yet)');
    const fetch = Buffer.alloc(9);
    fetch[0] = 0x1c;
    fetch.writeUInt32LE(id, 1);
    fetch.writeUInt32LE(10, 5);
    raw.send(fetch);
    const fetched = await raw.until(isEofOrErr);
    const rows = fetched.filter((p) => p.payload[0] === 0x00);
    t.equal(rows.length, 2, 'two binary rows');
    t.notOk(
      rows.some((p) => p.payload.includes(Buffer.from(CARD))),
      'fetched rows are masked',
    );
    t.ok(rows.some((p) => p.payload.includes(Buffer.from('************1111'))));
    // COM_STMT_SEND_LONG_DATA, then the execute that uses it; COM_STMT_RESET; COM_STMT_CLOSE.
    raw.send(Buffer.concat([Buffer.from([0x16]), Buffer.from("SELECT CONCAT('long:', ?) AS v")]));
    const p2 = await raw.until((p) => p.payload[0] === 0xfe || isErr(p)); // OK, the parameter, EOF
    await raw.until((p) => p.payload[0] === 0xfe); // the column, EOF
    const id2 = p2[0].payload.readUInt32LE(1);
    const longData = Buffer.alloc(7);
    longData[0] = 0x18;
    longData.writeUInt32LE(id2, 1);
    raw.send(Buffer.concat([longData, Buffer.from('long-data-part')]));
    const exec2 = Buffer.alloc(14);
    exec2[0] = 0x17;
    exec2.writeUInt32LE(id2, 1);
    exec2.writeUInt32LE(1, 6);
    exec2[10] = 0; // NULL bitmap
    exec2[11] = 1; // new parameters bound
    exec2[12] = 0xfd; // VAR_STRING, its value sent as long data
    raw.send(exec2);
    const res2 = await raw.until(isEofOrErr); // definitions (or ERR)
    if (!isErr(res2[res2.length - 1])) res2.push(...(await raw.until(isEofOrErr))); // rows
    t.ok(
      res2.some((p) => p.payload.toString().includes('long:long-data-part')),
      errText(res2[res2.length - 1]) || 'long data used',
    );
    const reset = Buffer.alloc(5);
    reset[0] = 0x1a;
    reset.writeUInt32LE(id2, 1);
    raw.send(reset);
    t.equal((await raw.next())?.payload[0], 0x00, 'COM_STMT_RESET: OK');
    reset[0] = 0x19;
    raw.send(reset); // COM_STMT_CLOSE: no answer
    // COM_SET_OPTION, COM_STATISTICS, COM_RESET_CONNECTION, COM_PING.
    raw.send(Buffer.from([0x1b, 0x00, 0x00]));
    const opt = await raw.next();
    t.ok(opt && (opt.payload[0] === 0xfe || opt.payload[0] === 0x00), 'COM_SET_OPTION');
    raw.send(Buffer.from([0x09]));
    t.match((await raw.next())?.payload.toString(), /Uptime/, 'COM_STATISTICS');
    raw.send(Buffer.from([0x1f]));
    t.equal((await raw.next())?.payload[0], 0x00, 'COM_RESET_CONNECTION');
    raw.send(Buffer.from([0x0e]));
    t.equal((await raw.next())?.payload[0], 0x00, 'COM_PING');
    raw.send(query('SELECT 42'));
    await raw.until(isEofOrErr);
    t.ok(
      (await raw.until(isEofOrErr)).some((p) => p.payload.toString().includes('42')),
      'the session goes on',
    );
    raw.close();
  });

  t.test('LOAD DATA LOCAL INFILE runs only when a rule allows it by name', async (t) => {
    const { Readable } = await import('node:stream');
    const factory = () => Readable.from([Buffer.from('1\tAda\n2\tBob\n')]);
    const a = await gatewayConn(addr, TOKENS.analyst, { ...TLS, database: db.database, infileStreamFactory: factory });
    const [r] = await a.query("LOAD DATA LOCAL INFILE 'rows.tsv' INTO TABLE imports");
    t.equal((r as { affectedRows: number }).affectedRows, 2, 'allowed by rule "imports"');
    await a.end();
    const b = await gatewayConn(addr, TOKENS.billing, { ...TLS, database: db.database, infileStreamFactory: factory });
    await t.rejects(b.query("LOAD DATA LOCAL INFILE 'rows.tsv' INTO TABLE imports"), { message: /load-data-local/ }, 'the default allow is not enough');
    await b.end();
  });

  t.test('COM_CHANGE_USER logs in again with a token (mysql2 changeUser)', async (t) => {
    const c = await gatewayConn(addr, TOKENS.billing, { ...TLS, database: db.database });
    t.same((await c.query('SELECT card_number FROM cards WHERE id = 1'))[0], [{ card_number: '************1111' }]);
    await c.changeUser({ user: 'analyst', password: TOKENS.analyst, database: db.database });
    t.same((await c.query('SELECT card_number FROM cards WHERE id = 1'))[0], [{ card_number: CARD }], 'the new identity is exempt');
    await t.rejects(c.changeUser({ user: 'x', password: 'not-a-valid-token-at-all' }), { message: /gatehouse/ });
    c.destroy();
  });

  t.test('audit: one event per statement and per EXECUTE, with masked parameters; protocol mysql', async (t) => {
    const c = await gatewayConn(addr, TOKENS.billing, { ...TLS, database: db.database, multipleStatements: true });
    await c.query("SELECT 'audit-a' AS m; SELECT 'audit-b' AS m");
    await c.execute("SELECT holder FROM cards WHERE id = ? AND note <> 'audit-exec'", [`${CARD}`]);
    await c.execute("SELECT holder FROM cards WHERE id = ? AND note <> 'audit-exec'", [2]);
    await t.rejects(c.query('DROP TABLE vault'));
    await c.end();
    const units = readEvents(tg.dataDir, { connector: 'orders-db', kind: 'unit', limit: 10000 });
    t.ok(units.every((e) => e.protocol === 'mysql'));
    const a = units.filter((e) => /audit-a|audit-b/.test(e.unit?.text ?? ''));
    t.same(
      a.map((e) => [e.unit?.text, e.result?.status, e.result?.rows]),
      [
        ["SELECT 'audit-a' AS m", 'OK', 1],
        ["SELECT 'audit-b' AS m", 'OK', 1],
      ],
    );
    const ex = units.filter((e) => /audit-exec/.test(e.unit?.text ?? ''));
    t.equal(ex.length, 2, 'one event per EXECUTE');
    t.same(ex[0].unit?.params, ['[REDACTED]'], 'parameters masked by detectors');
    t.same(ex[1].unit?.params, ['2']);
    t.equal(ex[1].result?.rows, 1);
    const denied = units.find((e) => e.unit?.text === 'DROP TABLE vault');
    t.same(denied?.decision, { action: 'deny', rule: 'no-ddl' });
    const all = JSON.stringify(readEvents(tg.dataDir, { connector: 'orders-db', limit: 10000 }));
    t.notMatch(all, CARD, 'no clear card number in the audit log');
  });

  t.test('no clear masked value anywhere in data_dir (audit store, recordings)', async (t) => {
    const files: string[] = [];
    const walk = (d: string) => {
      for (const f of readdirSync(d)) {
        const p = join(d, f);
        if (statSync(p).isDirectory()) walk(p);
        else files.push(p);
      }
    };
    walk(tg.dataDir);
    t.ok(files.length > 0);
    // Only exempt callers (analysts) ever saw CARD in clear; nobody was shown CARD2 or the e-mail.
    for (const f of files) {
      const bytes = readFileSync(f);
      t.notOk(bytes.includes(Buffer.from(CARD2)) || bytes.includes(Buffer.from(EMAIL)), `no clear value in ${f.slice(tg.dataDir.length)}`);
    }
  });
});
