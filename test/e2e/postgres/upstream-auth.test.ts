/**
 * The connector's own upstream login against a real, throwaway PostgreSQL 15 cluster that
 * asks for a password (the shared server on :5432 trusts everyone, so it cannot test this):
 * SCRAM-SHA-256, md5 and cleartext per role in pg_hba.conf, and TLS per `sslmode` against a
 * server certificate signed by a CA made here. Callers log in through the gateway with a
 * static token; the upstream role, never the claimed user, runs the statements.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { readEvents } from '@gatehouse/audit';
import type { AuditEvent } from '@gatehouse/core';
import { startTestGateway, TOKENS, type TestGateway } from '../../lib/gateway.js';
import { LEAF, makeTestPki } from '../../lib/pki.js';
import { connectorsYaml, postgresConnector, startTestCluster, stopTestCluster } from '../../lib/postgres.js';
import { filesUnder } from '../../lib/files.js';
import type { TapTest } from '../../lib/tap.js';
import { gatewayClient, psql } from './pg-env.js';

/** The machine's shared server: trust auth and no TLS, so a clear-text fallback would log in. */
const SHARED_PG = '127.0.0.1:5432';

interface Cluster {
  dir: string;
  port: number;
  passwords: Record<'scram' | 'md5' | 'clear' | 'tls' | 'prep', string>;
}

const ROLES = { scram: 'gh_scram', md5: 'gh_md5', clear: 'gh_clear', tls: 'gh_tls', prep: 'gh_prep' } as const;

/** The cluster in `dir`, with TLS (the server certificate a CA in `dir` signed) and one role per password method. */
async function startCluster(dir: string): Promise<Cluster> {
  // Per-role methods; gh_tls only over TLS (127.0.0.2 is there for the host name check).
  const hba = [
    'local all postgres trust',
    `host all ${ROLES.scram} 127.0.0.1/32 scram-sha-256`,
    `host all ${ROLES.md5} 127.0.0.1/32 md5`,
    `host all ${ROLES.clear} 127.0.0.1/32 password`,
    `host all ${ROLES.prep} 127.0.0.1/32 scram-sha-256`,
    `hostssl all ${ROLES.tls} 127.0.0.1/32 scram-sha-256`,
    `hostssl all ${ROLES.tls} 127.0.0.2/32 scram-sha-256`,
  ];
  const conf = [`ssl = on`, `ssl_cert_file = '${join(dir, 'server.crt')}'`, `ssl_key_file = '${join(dir, 'server.key')}'`];
  const { port } = await startTestCluster(dir, { hba, conf, listen: '127.0.0.1,127.0.0.2' });

  const pw = () => `pw-${randomBytes(9).toString('hex')}`;
  const passwords = {
    scram: pw(),
    md5: pw(),
    clear: pw(),
    tls: pw(),
    // A soft hyphen: SASLprep maps it to nothing, server side and (now) client side.
    prep: `pass\u00ADword-${randomBytes(6).toString('hex')}`,
  };
  const admin = new pg.Client({ host: dir, port, user: 'postgres', database: 'postgres' });
  await admin.connect();
  try {
    for (const k of ['scram', 'clear', 'tls', 'prep'] as const) await admin.query(`CREATE ROLE ${ROLES[k]} LOGIN PASSWORD '${passwords[k]}'`);
    await admin.query(`SET password_encryption = 'md5'`);
    await admin.query(`CREATE ROLE ${ROLES.md5} LOGIN PASSWORD '${passwords.md5}'`);
  } finally {
    await admin.end();
  }
  return { dir, port, passwords };
}

/** A login through `connector` that must be refused: its error, or null (a failed assertion) when it logged in. */
async function refusedLogin(t: TapTest, tg: TestGateway, connector: string): Promise<(Error & { code?: string }) | null> {
  const e = await tryLogin(tg, connector);
  t.ok(e instanceof Error, `${connector}: login refused`);
  if (!(e instanceof Error)) {
    await e.end();
    return null;
  }
  t.comment(`${connector}: ${e.code} ${e.message}`);
  return e;
}

/** Connect through the gateway; resolves to the error when the login is refused. */
async function tryLogin(tg: TestGateway, connector: string): Promise<pg.Client | (Error & { code?: string })> {
  try {
    return await gatewayClient(tg.address(connector), TOKENS.billing, { user: 'claimed_user', application_name: `probe-${connector}` });
  } catch (e) {
    return e as Error & { code?: string };
  }
}

t.test('upstream login: SCRAM, md5, cleartext and TLS against a password-protected PostgreSQL 15', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-pgauth-'));
  let tg: TestGateway | null = null;
  // Registered before anything starts, so a failure half-way still stops and removes it all.
  t.teardown(async () => {
    await tg?.stop();
    await stopTestCluster(dir);
    rmSync(dir, { recursive: true, force: true });
  });

  // A CA, the server certificate it signed for 127.0.0.1 / localhost, and an unrelated CA, in the cluster's directory.
  await makeTestPki(t, [LEAF.server], { dir });
  const c = await startCluster(dir);
  const wrong = `wrong-${randomBytes(9).toString('hex')}`;
  const secrets = [...Object.values(c.passwords), wrong];
  const up = `127.0.0.1:${c.port}`;
  const ca = JSON.stringify(join(dir, 'ca.crt'));
  const otherCa = JSON.stringify(join(dir, 'other-ca.crt'));
  /** One connector per upstream login: [name, address, role, password env var (none: no password), sslmode, CA file]. */
  const logins: [string, string, string, string | null, string, string?][] = [
    ['scram', up, ROLES.scram, 'PW_SCRAM', 'disable'],
    ['md5', up, ROLES.md5, 'PW_MD5', 'disable'],
    ['clear', up, ROLES.clear, 'PW_CLEAR', 'prefer'],
    ['prep', up, ROLES.prep, 'PW_PREP', 'disable'],
    ['tls-require', up, ROLES.tls, 'PW_TLS', 'require'],
    ['tls-verify-ip', up, ROLES.tls, 'PW_TLS', 'verify-full', ca],
    ['tls-verify-name', `localhost:${c.port}`, ROLES.tls, 'PW_TLS', 'verify-full', ca],
    ['tls-plain', up, ROLES.tls, 'PW_TLS', 'disable'],
    ['bad-scram', up, ROLES.scram, 'PW_WRONG', 'disable'],
    ['bad-md5', up, ROLES.md5, 'PW_WRONG', 'disable'],
    ['bad-clear', up, ROLES.clear, 'PW_WRONG', 'require'],
    // The scram role may log in without TLS: falling back to clear text here would succeed.
    ['wrong-ca', up, ROLES.scram, 'PW_SCRAM', 'verify-full', otherCa],
    ['wrong-host', `127.0.0.2:${c.port}`, ROLES.tls, 'PW_TLS', 'verify-full', ca],
    ['no-tls-require', SHARED_PG, 'postgres', null, 'require'],
    ['no-tls-verify', SHARED_PG, 'postgres', null, 'verify-full', ca],
  ];
  const tlsYaml = `tls: { cert: ${JSON.stringify(join(dir, 'server.crt'))}, key: ${JSON.stringify(join(dir, 'server.key'))} }`;
  tg = await startTestGateway({
    env: { PW_SCRAM: c.passwords.scram, PW_MD5: c.passwords.md5, PW_CLEAR: c.passwords.clear, PW_TLS: c.passwords.tls, PW_PREP: c.passwords.prep, PW_WRONG: wrong },
    yaml: connectorsYaml(
      logins.map(([name, address, user, passwordEnv, sslmode, caFile]) =>
        postgresConnector({
          name,
          extra: [tlsYaml, 'startup_timeout: 10s'],
          upstream:
            `{ address: "${address}", database: postgres, user: ${user}` +
            `${passwordEnv ? `, password: "\${env:${passwordEnv}}"` : ''}, sslmode: ${sslmode}${caFile ? `, ca: ${caFile}` : ''} }`,
        }),
      ),
    ),
  });
  const gw = tg;

  t.test('the cluster stores the verifiers this test relies on', async (t) => {
    const admin = new pg.Client({ host: dir, port: c.port, user: 'postgres', database: 'postgres' });
    await admin.connect();
    try {
      const { rows } = await admin.query<{ rolname: string; kind: string }>(
        `SELECT rolname, split_part(rolpassword, '$', 1) AS kind FROM pg_authid WHERE rolname LIKE 'gh\\_%' ORDER BY rolname`,
      );
      const kinds = Object.fromEntries(rows.map((r) => [r.rolname, r.kind.startsWith('md5') ? 'md5' : r.kind]));
      t.same(kinds, { gh_clear: 'SCRAM-SHA-256', gh_md5: 'md5', gh_prep: 'SCRAM-SHA-256', gh_scram: 'SCRAM-SHA-256', gh_tls: 'SCRAM-SHA-256' });
    } finally {
      await admin.end();
    }
  });

  const cases: Array<{ connector: string; role: string; ssl: boolean; what: string }> = [
    { connector: 'scram', role: ROLES.scram, ssl: false, what: 'SCRAM-SHA-256, sslmode=disable' },
    { connector: 'md5', role: ROLES.md5, ssl: false, what: 'md5, sslmode=disable' },
    { connector: 'clear', role: ROLES.clear, ssl: true, what: 'cleartext password, sslmode=prefer (TLS offered, so used)' },
    { connector: 'prep', role: ROLES.prep, ssl: false, what: 'SCRAM with a password SASLprep changes' },
    { connector: 'tls-require', role: ROLES.tls, ssl: true, what: 'hostssl role, sslmode=require' },
    { connector: 'tls-verify-ip', role: ROLES.tls, ssl: true, what: 'hostssl role, sslmode=verify-full by IP SAN' },
    { connector: 'tls-verify-name', role: ROLES.tls, ssl: true, what: 'hostssl role, sslmode=verify-full by DNS SAN' },
  ];
  for (const k of cases) {
    t.test(`login works: ${k.what}`, async (t) => {
      const client = await tryLogin(gw, k.connector);
      if (client instanceof Error) {
        t.fail(`login through ${k.connector} failed: ${client.code}: ${client.message}`);
        return;
      }
      try {
        const who = await client.query<{ current_user: string; session_user: string }>('select current_user, session_user');
        t.same(who.rows, [{ current_user: k.role, session_user: k.role }], 'the upstream role, not the claimed user');
        const ssl = await client.query<{ ssl: boolean }>('select ssl from pg_stat_ssl where pid = pg_backend_pid()');
        t.same(ssl.rows, [{ ssl: k.ssl }], `upstream TLS ${k.ssl ? 'on' : 'off'}`);
      } finally {
        await client.end();
      }
    });
  }

  t.test('psql through the gateway (caller TLS) to an md5 and a cleartext upstream', async (t) => {
    for (const [name, role] of [
      ['md5', ROLES.md5],
      ['clear', ROLES.clear],
    ] as const) {
      const r = await psql(gw.address(name), TOKENS.billing, ['-c', 'select current_user', '-c', 'select ssl from pg_stat_ssl where pid = pg_backend_pid()']);
      t.equal(r.code, 0, r.stderr);
      t.same(r.stdout.trim().split('\n'), [role, name === 'clear' ? 't' : 'f']);
    }
  });

  t.test('the session audit names the caller, the claimed user and no upstream secret', async (t) => {
    const starts = readEvents(gw.dataDir, { connector: 'scram', kind: 'session.start' });
    t.ok(starts.length >= 1);
    t.equal(starts[0].identity?.subject, 'svc:billing');
    t.equal(starts[0].meta?.claimedUser, 'claimed_user');
    const units = readEvents(gw.dataDir, { connector: 'scram', kind: 'unit' });
    t.ok(
      units.some((e) => /current_user/.test(e.unit?.text ?? '')),
      'statements are audited',
    );
  });

  t.test('a hostssl-only role is refused over clear text (the cluster really enforces TLS)', async (t) => {
    const e = await refusedLogin(t, gw, 'tls-plain');
    if (e) t.match(e.message, /no pg_hba\.conf entry .*no encryption/);
  });

  for (const name of ['bad-scram', 'bad-md5', 'bad-clear']) {
    t.test(`a wrong upstream password (${name}) is a clear error, audited, and never shown`, async (t) => {
      const e = await refusedLogin(t, gw, name);
      if (!e) return;
      t.equal(e.code, '28P01');
      t.match(e.message, /^gatehouse: upstream refused the login: password authentication failed for user "gh_/);
      for (const s of secrets) t.notOk(e.message.includes(s), 'no password in the error');
      const events = await settledEvents(gw.dataDir, name, 2);
      t.same(
        events.map((x) => x.kind),
        ['session.start', 'session.end'],
      );
      t.equal(events[0].identity?.subject, 'svc:billing', 'the caller is identified');
      t.match(events[1].meta?.reason, /^upstream login failed: 28P01 .*password authentication failed/, 'the audit says why');
    });
  }

  t.test('verify-full with the wrong CA fails the caller clearly and never falls back to clear text', async (t) => {
    const e = await refusedLogin(t, gw, 'wrong-ca');
    if (!e) return;
    t.equal(e.code, '08001');
    t.match(e.message, /^gatehouse: upstream TLS failed: .*(certificate|issuer)/);
    const events = await settledEvents(gw.dataDir, 'wrong-ca', 2);
    t.match(events[1]?.meta?.reason, /^upstream login failed: 08001 upstream TLS failed/, 'audited with the reason');
  });

  t.test('verify-full checks the host name', async (t) => {
    const e = await refusedLogin(t, gw, 'wrong-host');
    if (!e) return;
    t.equal(e.code, '08001');
    t.match(e.message, /upstream TLS failed: .*127\.0\.0\.2/);
  });

  t.test('require / verify-full against a server without TLS fail rather than log in in clear text', async (t) => {
    for (const name of ['no-tls-require', 'no-tls-verify']) {
      const e = await refusedLogin(t, gw, name);
      if (!e) continue;
      t.equal(e.code, '08001');
      t.match(e.message, /upstream refused TLS \(sslmode=(require|verify-full)\)/);
    }
  });

  t.test('no upstream password anywhere in the gateway data directory', async (t) => {
    const stored = Buffer.concat(filesUnder(gw.dataDir).map((f) => f.bytes));
    t.ok(stored.length > 0);
    const all = JSON.stringify(readEvents(gw.dataDir, { limit: 10_000 }));
    t.match(all, /upstream login failed/, 'the failures are in the log being searched');
    for (const s of secrets) {
      t.notOk(stored.includes(s), 'not in any stored byte');
      t.notOk(all.includes(s), 'not in any audit event');
    }
  });
});

/**
 * The session.end event of a refused login is appended as the session closes, which can be
 * just after the caller read its error: poll (bounded) until `count` events are there.
 */
async function settledEvents(dataDir: string, connector: string, count: number): Promise<AuditEvent[]> {
  const until = Date.now() + 5_000;
  for (;;) {
    const events = readEvents(dataDir, { connector });
    if (events.length >= count || Date.now() > until) return events;
    await new Promise((r) => setTimeout(r, 20));
  }
}
