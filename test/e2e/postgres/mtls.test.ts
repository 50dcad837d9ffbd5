/**
 * mTLS client-certificate identities on the PostgreSQL connector, over real TLS: a CA, a
 * server certificate for 127.0.0.1 and client certificates made by openssl for this run, a
 * gateway with `tls.client_auth` in front of the local PostgreSQL, and the real clients —
 * psql (libpq, sslmode=verify-full), the pg driver, pgjdbc (when installed), and a raw
 * direct-TLS (ALPN `postgresql`) startup. A mapped certificate logs in without a password; a
 * certificate from another CA, or none, never gets past TLS; an unmapped one needs a token.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { promisify } from 'node:util';
import pg from 'pg';
import { readEvents } from '@gatehouse/audit';
import type { AuditEvent } from '@gatehouse/core';
import { startTestGateway, TOKENS } from '../../lib/gateway.js';
import { dbUpstream, postgresConnector } from '../../lib/postgres.js';
import { LEAF, makeTestPki, mtlsIdentityYaml, SPIFFE_BILLING as SPIFFE } from '../../lib/pki.js';
import { createTestDb, runClient } from './pg-env.js';

const run = promisify(execFile);
const MTLS_IDENTITY = { subject: 'svc:billing-mtls', issuer: 'mtls', groups: ['payments'] };
const TOKEN_IDENTITY = { subject: 'svc:billing', issuer: 'static', groups: ['payments'] };
const FINGERPRINT = /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/;
const PGJDBC = '/usr/share/java/postgresql.jar';

t.test('postgres connector: mTLS client-certificate identities', async (t) => {
  const pki = await makeTestPki(
    t,
    [
      LEAF.server,
      LEAF.mapped,
      LEAF.unmapped,
      // Mapped, but to an identity the connector's allow list does not name.
      { name: 'outsider', ca: 'ca', ext: 'extendedKeyUsage=clientAuth' },
      LEAF.forged,
    ],
    { clientKeyFiles: true },
  );
  const db = await createTestDb('mtls');
  const tg = await startTestGateway({
    env: { PG_PASSWORD: db.password },
    yaml: `
audit: { durability: strict }
${mtlsIdentityYaml('{ cn: outsider, subject: "svc:outsider", groups: [elsewhere] }')}connectors:
${postgresConnector({
  name: 'pg-mtls',
  extra: [`tls: { cert: ${pki.file('server.crt')}, key: ${pki.file('server.key')}, ca: ${pki.file('ca.crt')}, client_auth: true }`],
  upstream: dbUpstream(db, 'prefer'),
})}
`,
  });
  t.teardown(async () => {
    await tg.stop();
    await db.drop();
  });
  const addr = tg.address('pg-mtls');
  const events = (): AuditEvent[] => readEvents(tg.dataDir, { connector: 'pg-mtls', limit: 10_000 });
  /** Events since `before`, waiting (bounded) until `until` holds for them. */
  const eventsAfter = async (before: number, until: (e: AuditEvent[]) => boolean): Promise<AuditEvent[]> => {
    for (let i = 0; i < 100 && !until(events().slice(before)); i++) await new Promise((r) => setTimeout(r, 50));
    return events().slice(before);
  };
  const ended = (e: AuditEvent[]) => e.some((x) => x.kind === 'session.end');
  const kinds = (e: AuditEvent[]) => e.map((x) => x.kind);

  /** psql (libpq) with verify-full; `client` names the certificate (none: no sslcert at all). */
  const psql = (client: string | null, opts: { password?: string; sslmode?: string } = {}) => {
    const conn = [
      `host=127.0.0.1 port=${addr.port} user=anything dbname=whatever`,
      `sslmode=${opts.sslmode ?? 'verify-full'} sslrootcert=${pki.file('ca.crt')}`,
      // Without sslcert libpq would look in ~/.postgresql: point it at files that do not exist.
      client ? `sslcert=${pki.file(`${client}.crt`)} sslkey=${pki.file(`${client}.key`)}` : `sslcert=${pki.file('none.crt')} sslkey=${pki.file('none.key')}`,
    ].join(' ');
    return runClient('psql', ['-X', '-w', '-At', conn, '-c', 'SELECT current_user, 40 + 2'], {
      PGPASSWORD: opts.password ?? '',
      PGPASSFILE: pki.file('no-pgpass'),
      PGCONNECT_TIMEOUT: '10',
    });
  };

  await t.test('psql: a mapped certificate logs in without a password; audited as the mapped identity with the certificate', async (t) => {
    const before = events().length;
    const r = await psql('mapped');
    t.equal(r.code, 0, r.stderr);
    t.equal(r.stdout.trim(), `${db.role}|42`, 'statements run upstream as the connector role');
    const ev = await eventsAfter(before, ended);
    t.same(kinds(ev), ['session.start', 'unit', 'session.end'], 'no password was asked: no auth.failure, no protocol error');
    const start = ev[0];
    t.same(start.identity, MTLS_IDENTITY);
    t.match(start.meta, { tls: true, claimedUser: 'anything', certificate: { cn: 'billing-client', uris: [SPIFFE], fingerprint256: FINGERPRINT } });
    t.same(ev[1].identity, MTLS_IDENTITY);
    t.equal(ev[1].unit?.text, 'SELECT current_user, 40 + 2');
  });

  await t.test('psql: a mapped certificate wins over PGPASSWORD (the password is never asked for)', async (t) => {
    const before = events().length;
    const r = await psql('mapped', { password: TOKENS.billing });
    t.equal(r.code, 0, r.stderr);
    const ev = await eventsAfter(before, ended);
    t.same(ev.find((e) => e.kind === 'session.start')?.identity, MTLS_IDENTITY);
  });

  await t.test('psql: a certificate from another CA, or none, is refused by TLS; audited as protocol.error with the reason', async (t) => {
    const before = events().length;
    const forged = await psql('forged');
    t.not(forged.code, 0, 'another CA: refused');
    t.notMatch(forged.stdout, /42/);
    const none = await psql(null);
    t.not(none.code, 0, 'no certificate: refused');
    t.match(none.stderr, /certificate required/, none.stderr);
    const ev = await eventsAfter(before, (e) => e.length >= 2);
    t.same(kinds(ev), ['protocol.error', 'protocol.error'], 'only the refusals: no session, no unit');
    t.same(ev.map((e) => (e.meta as { code?: string }).code).sort(), ['ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE']);
    for (const e of ev) t.match(e.meta, { error: 'client certificate refused by the TLS layer', tls: true });
  });

  await t.test('psql: an unmapped certificate needs a token; with one the token identity logs in', async (t) => {
    let before = events().length;
    const refused = await psql('unmapped');
    t.not(refused.code, 0);
    t.match(refused.stderr, /no password supplied/, 'libpq was asked for a password it does not have');
    let ev = await eventsAfter(before, (e) => e.length >= 1);
    t.same(kinds(ev), ['auth.failure']);
    t.match(ev[0].meta, { code: 'auth.certificate', certificate: { cn: 'stranger', uris: ['spiffe://example.org/ns/other/sa/stranger'], fingerprint256: FINGERPRINT } });

    before = events().length;
    const ok = await psql('unmapped', { password: TOKENS.billing });
    t.equal(ok.code, 0, ok.stderr);
    t.equal(ok.stdout.trim(), `${db.role}|42`);
    ev = await eventsAfter(before, ended);
    t.same(kinds(ev), ['auth.failure', 'session.start', 'unit', 'session.end'], 'the certificate was tried first, then the token');
    t.same(ev[1].identity, TOKEN_IDENTITY, 'the token decides');
    t.match(ev[1].meta, { certificate: { cn: 'stranger' } }, 'the session still names the certificate it came with');
    t.same(ev[2].identity, TOKEN_IDENTITY);

    before = events().length;
    const bad = await psql('unmapped', { password: 'not-a-configured-token-0123' });
    t.not(bad.code, 0);
    t.match(bad.stderr, /28P01|gatehouse: /);
    ev = await eventsAfter(before, (e) => e.length >= 2);
    t.same(kinds(ev), ['auth.failure', 'auth.failure'], 'no fallback anywhere: certificate, then token, both refused');
  });

  await t.test('psql: a certificate mapped to an identity the connector does not allow still lets a token in', async (t) => {
    const before = events().length;
    const refused = await psql('outsider');
    t.not(refused.code, 0);
    const ok = await psql('outsider', { password: TOKENS.billing });
    t.equal(ok.code, 0, ok.stderr);
    const ev = await eventsAfter(before, ended);
    t.match(ev[0], { kind: 'auth.failure', meta: { code: 'auth.forbidden', certificate: { cn: 'outsider' } } });
    t.same(ev.find((e) => e.kind === 'session.start')?.identity, TOKEN_IDENTITY);
  });

  await t.test('clear text is refused on a client_auth connector, even from loopback', async (t) => {
    const before = events().length;
    const r = await psql('mapped', { sslmode: 'disable', password: TOKENS.billing });
    t.not(r.code, 0);
    t.match(r.stderr, /TLS with a client certificate is required/);
    const ev = await eventsAfter(before, (e) => e.length >= 1);
    t.match(ev, [{ kind: 'protocol.error', meta: { tls: false, sqlstate: '28000' } }]);
  });

  await t.test('direct TLS (ALPN postgresql): the same certificate checks', async (t) => {
    /** A direct-TLS startup; resolves with the first backend bytes, or the error. */
    const direct = (client: string | null) =>
      new Promise<{ data: Buffer; error?: string }>((resolve) => {
        const chunks: Buffer[] = [];
        let error: string | undefined;
        const s = tlsConnect({
          host: '127.0.0.1',
          port: addr.port,
          ca: pki.pem('ca.crt'),
          ALPNProtocols: ['postgresql'],
          ...(client ? { cert: pki.pem(`${client}.crt`), key: pki.pem(`${client}.key`) } : {}),
        });
        s.on('secureConnect', () => {
          const body = Buffer.from('user\0anything\0database\0whatever\0\0');
          const head = Buffer.alloc(8);
          head.writeInt32BE(8 + body.length, 0);
          head.writeInt32BE(196608, 4);
          s.write(Buffer.concat([head, body]));
        });
        s.on('data', (c: Buffer) => {
          chunks.push(c);
          if (Buffer.concat(chunks).length >= 9) s.end();
        });
        s.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
        s.on('close', () => resolve({ data: Buffer.concat(chunks), ...(error ? { error } : {}) }));
      });
    const before = events().length;
    const mapped = await direct('mapped');
    t.equal(mapped.data.subarray(0, 9).toString('hex'), Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 0]).toString('hex'), 'AuthenticationOk straight away');
    const unmapped = await direct('unmapped');
    t.equal(unmapped.data.subarray(0, 9).toString('hex'), Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 3]).toString('hex'), 'AuthenticationCleartextPassword: a token is needed');
    const none = await direct(null);
    t.equal(none.data.length, 0);
    t.equal(none.error, 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED');
    const forged = await direct('forged');
    t.equal(forged.data.length, 0, 'closed before any PostgreSQL byte');
    const ev = await eventsAfter(before, (e) => e.filter((x) => x.kind === 'protocol.error').length >= 2 && ended(e));
    t.same(
      ev
        .filter((e) => e.kind === 'protocol.error')
        .map((e) => (e.meta as { code?: string }).code)
        .sort(),
      ['ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'],
    );
    t.same(ev.find((e) => e.kind === 'session.start')?.identity, MTLS_IDENTITY);
  });

  await t.test('pg driver with ssl { ca, cert, key }', async (t) => {
    const client = (name: string, password?: string) =>
      new pg.Client({
        host: '127.0.0.1',
        port: addr.port,
        user: 'anything',
        database: 'whatever',
        ...(password !== undefined ? { password } : {}),
        ssl: { ca: pki.pem('ca.crt'), cert: pki.pem(`${name}.crt`), key: pki.pem(`${name}.key`) },
      });
    const before = events().length;
    const mapped = client('mapped');
    await mapped.connect();
    t.same((await mapped.query('SELECT current_user AS u, 40 + 2 AS n')).rows, [{ u: db.role, n: 42 }]);
    await mapped.end();

    const withToken = client('unmapped', TOKENS.billing);
    await withToken.connect();
    t.same((await withToken.query('SELECT 1 AS one')).rows, [{ one: 1 }]);
    await withToken.end();

    const empty = client('unmapped', '');
    const e = await empty.connect().then(
      () => null,
      (err: Error & { code?: string }) => err,
    );
    t.equal(e?.code, '28P01', 'an empty password leaves the certificate refusal standing');
    t.match(e?.message, /client certificate is not mapped to an identity/);

    const forged = client('forged', TOKENS.billing);
    const f = await forged.connect().then(
      () => null,
      (err: Error) => err,
    );
    t.ok(f, 'another CA: no connection, even with a valid token');

    const ev = await eventsAfter(before, (x) => x.filter((y) => y.kind === 'session.end').length >= 2 && x.some((y) => y.kind === 'protocol.error'));
    t.same(
      ev.filter((x) => x.kind === 'session.start').map((x) => x.identity),
      [MTLS_IDENTITY, TOKEN_IDENTITY],
    );
  });

  const javac = await run('javac', ['-version']).then(
    () => true,
    () => false,
  );
  await t.test(
    'pgjdbc with sslmode=verify-full',
    { skip: !existsSync(PGJDBC) || !javac ? 'pgjdbc or javac not installed (scripts/ensure-system-deps.sh installs them)' : false },
    async (t) => {
      writeFileSync(
        join(pki.dir, 'MtlsProbe.java'),
        `import java.sql.*;
import java.util.Properties;

public class MtlsProbe {
  public static void main(String[] a) {
    Properties p = new Properties();
    p.setProperty("user", "anything");
    if (!a[1].isEmpty()) p.setProperty("password", a[1]);
    try (Connection c = DriverManager.getConnection(a[0], p);
         Statement s = c.createStatement();
         ResultSet r = s.executeQuery("SELECT current_user, 40 + 2")) {
      r.next();
      System.out.println(r.getString(1) + "|" + r.getInt(2));
    } catch (SQLException e) {
      System.out.println("ERROR " + e.getSQLState() + " " + e.getMessage());
      System.exit(2);
    }
  }
}
`,
      );
      await run('javac', ['-d', pki.dir, join(pki.dir, 'MtlsProbe.java')], { timeout: 120_000 });
      const jdbc = (client: string, password = '') => {
        const url =
          `jdbc:postgresql://127.0.0.1:${addr.port}/whatever?sslmode=verify-full&sslrootcert=${pki.file('ca.crt')}` +
          `&sslcert=${pki.file(`${client}.crt`)}&sslkey=${pki.file(`${client}.pk8`)}`;
        return runClient('java', ['-cp', `${pki.dir}:${PGJDBC}`, 'MtlsProbe', url, password], {}, { timeoutMs: 60_000 });
      };
      const before = events().length;
      const mapped = await jdbc('mapped');
      t.equal(mapped.code, 0, mapped.stdout + mapped.stderr);
      t.equal(mapped.stdout.trim(), `${db.role}|42`, 'a mapped certificate, no password');
      const token = await jdbc('unmapped', TOKENS.billing);
      t.equal(token.code, 0, token.stdout + token.stderr);
      t.equal(token.stdout.trim(), `${db.role}|42`, 'an unmapped certificate and a token');
      const noToken = await jdbc('unmapped');
      t.not(noToken.code, 0, 'an unmapped certificate without a token');
      const forged = await jdbc('forged', TOKENS.billing);
      t.not(forged.code, 0, 'another CA: refused by TLS');
      const ev = await eventsAfter(before, (x) => x.filter((y) => y.kind === 'session.end').length >= 2 && x.some((y) => y.kind === 'protocol.error'));
      t.same(
        ev.filter((x) => x.kind === 'session.start').map((x) => x.identity),
        [MTLS_IDENTITY, TOKEN_IDENTITY],
      );
      // pgjdbc offers a certificate only if its issuer is among the CAs the server names in its
      // CertificateRequest: the other CA's certificate is not even sent.
      t.match(ev.find((x) => x.kind === 'protocol.error')?.meta, { code: 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE', error: 'client certificate refused by the TLS layer' });
    },
  );
});
