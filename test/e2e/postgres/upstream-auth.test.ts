/**
 * The connector's own upstream login against a real, throwaway PostgreSQL 15 cluster that
 * asks for a password (the shared server on :5432 trusts everyone, so it cannot test this):
 * SCRAM-SHA-256, md5 and cleartext per role in pg_hba.conf, and TLS per `sslmode` against a
 * server certificate signed by a CA made here. Callers log in through the gateway with a
 * static token; the upstream role, never the claimed user, runs the statements.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { readEvents } from '@gatehouse/audit';
import type { AuditEvent } from '@gatehouse/core';
import { startTestGateway, TOKENS, type TestGateway } from '../../lib/gateway.js';
import { gatewayClient, psql } from './pg-env.js';

const run = promisify(execFile);
const PG_BIN = '/usr/lib/postgresql/15/bin';
/** The machine's shared server: trust auth and no TLS, so a clear-text fallback would log in. */
const SHARED_PG = '127.0.0.1:5432';

/** Run a command; reject with its stderr (commands here never see a secret on argv). */
async function sh(cmd: string, args: string[]): Promise<string> {
  try {
    return (await run(cmd, args, { timeout: 30_000 })).stdout;
  } catch (e) {
    const x = e as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${x.stderr || x.message}`);
  }
}

/** initdb and postgres refuse to run as root. */
const asPostgres = (bin: string, args: string[]) => sh('runuser', ['-u', 'postgres', '--', join(PG_BIN, bin), ...args]);

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (a && typeof a === 'object' ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

/** A CA, a server certificate it signed for 127.0.0.1 / localhost, and an unrelated CA. */
async function makeCerts(dir: string): Promise<void> {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  for (const name of ['ca', 'other-ca']) {
    await sh('openssl', ['req', '-x509', ...ec, '-keyout', join(dir, `${name}.key`), '-out', join(dir, `${name}.crt`), '-days', '2', '-subj', `/CN=gatehouse test ${name}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  }
  await sh('openssl', ['req', ...ec, '-keyout', join(dir, 'server.key'), '-out', join(dir, 'server.csr'), '-subj', '/CN=127.0.0.1']);
  writeFileSync(join(dir, 'server.ext'), 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n');
  await sh('openssl', ['x509', '-req', '-in', join(dir, 'server.csr'), '-CA', join(dir, 'ca.crt'), '-CAkey', join(dir, 'ca.key'), '-CAcreateserial',
    '-out', join(dir, 'server.crt'), '-days', '2', '-extfile', join(dir, 'server.ext')]);
}

interface Cluster {
  dir: string;
  port: number;
  passwords: Record<'scram' | 'md5' | 'clear' | 'tls' | 'prep', string>;
}

const ROLES = { scram: 'gh_scram', md5: 'gh_md5', clear: 'gh_clear', tls: 'gh_tls', prep: 'gh_prep' } as const;

async function startCluster(dir: string): Promise<Cluster> {
  await makeCerts(dir);
  await sh('chown', ['-R', 'postgres:postgres', dir]);
  const data = join(dir, 'data');
  await asPostgres('initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-sync', '--no-instructions']);
  const conf = [
    `listen_addresses = '127.0.0.1,127.0.0.2'`,
    `ssl = on`,
    `ssl_cert_file = '${join(dir, 'server.crt')}'`,
    `ssl_key_file = '${join(dir, 'server.key')}'`,
    `password_encryption = 'scram-sha-256'`,
    `fsync = off`,
    `log_connections = on`,
  ];
  writeFileSync(join(data, 'postgresql.conf'), '\n' + conf.join('\n') + '\n', { flag: 'a' });
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
  writeFileSync(join(data, 'pg_hba.conf'), hba.join('\n') + '\n');
  await sh('chown', ['-R', 'postgres:postgres', dir]);
  // The port was free a moment ago; another suite may take it first, so retry with a new one.
  let port = 0;
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    try {
      await asPostgres('pg_ctl', ['start', '-w', '-t', '30', '-D', data, '-l', join(dir, 'server.log'), '-o', `-p ${port} -k ${dir}`]);
      break;
    } catch (e) {
      if (attempt === 3) throw e;
    }
  }

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

async function stopCluster(dir: string): Promise<void> {
  const data = join(dir, 'data');
  if (existsSync(join(data, 'postmaster.pid'))) await asPostgres('pg_ctl', ['stop', '-D', data, '-m', 'immediate', '-w', '-t', '20']).catch(() => {});
}

/** Every byte the gateway stored under data_dir (audit database, WAL, recordings). */
function allStoredBytes(dir: string): Buffer {
  const parts: Buffer[] = [];
  for (const name of readdirSync(dir, { recursive: true }) as string[]) {
    const p = join(dir, name);
    if (statSync(p).isFile()) parts.push(readFileSync(p));
  }
  return Buffer.concat(parts);
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
    await stopCluster(dir);
    rmSync(dir, { recursive: true, force: true });
  });

  const c = await startCluster(dir);
  const wrong = `wrong-${randomBytes(9).toString('hex')}`;
  const secrets = [...Object.values(c.passwords), wrong];
  const up = `127.0.0.1:${c.port}`;
  const ca = JSON.stringify(join(dir, 'ca.crt'));
  const otherCa = JSON.stringify(join(dir, 'other-ca.crt'));
  const connector = (name: string, upstream: string) => `
  - name: ${name}
    type: postgres
    listen: 127.0.0.1:0
    tls: { cert: ${JSON.stringify(join(dir, 'server.crt'))}, key: ${JSON.stringify(join(dir, 'server.key'))} }
    startup_timeout: 10s
    upstream: { ${upstream} }
    allow: [ { groups: [payments] } ]`;
  tg = await startTestGateway({
    env: { PW_SCRAM: c.passwords.scram, PW_MD5: c.passwords.md5, PW_CLEAR: c.passwords.clear, PW_TLS: c.passwords.tls, PW_PREP: c.passwords.prep, PW_WRONG: wrong },
    yaml: `
audit: { durability: strict }
connectors:${[
      connector('scram', `address: "${up}", database: postgres, user: ${ROLES.scram}, password: "\${env:PW_SCRAM}", sslmode: disable`),
      connector('md5', `address: "${up}", database: postgres, user: ${ROLES.md5}, password: "\${env:PW_MD5}", sslmode: disable`),
      connector('clear', `address: "${up}", database: postgres, user: ${ROLES.clear}, password: "\${env:PW_CLEAR}", sslmode: prefer`),
      connector('prep', `address: "${up}", database: postgres, user: ${ROLES.prep}, password: "\${env:PW_PREP}", sslmode: disable`),
      connector('tls-require', `address: "${up}", database: postgres, user: ${ROLES.tls}, password: "\${env:PW_TLS}", sslmode: require`),
      connector('tls-verify-ip', `address: "${up}", database: postgres, user: ${ROLES.tls}, password: "\${env:PW_TLS}", sslmode: verify-full, ca: ${ca}`),
      connector('tls-verify-name', `address: "localhost:${c.port}", database: postgres, user: ${ROLES.tls}, password: "\${env:PW_TLS}", sslmode: verify-full, ca: ${ca}`),
      connector('tls-plain', `address: "${up}", database: postgres, user: ${ROLES.tls}, password: "\${env:PW_TLS}", sslmode: disable`),
      connector('bad-scram', `address: "${up}", database: postgres, user: ${ROLES.scram}, password: "\${env:PW_WRONG}", sslmode: disable`),
      connector('bad-md5', `address: "${up}", database: postgres, user: ${ROLES.md5}, password: "\${env:PW_WRONG}", sslmode: disable`),
      connector('bad-clear', `address: "${up}", database: postgres, user: ${ROLES.clear}, password: "\${env:PW_WRONG}", sslmode: require`),
      // The scram role may log in without TLS: falling back to clear text here would succeed.
      connector('wrong-ca', `address: "${up}", database: postgres, user: ${ROLES.scram}, password: "\${env:PW_SCRAM}", sslmode: verify-full, ca: ${otherCa}`),
      connector('wrong-host', `address: "127.0.0.2:${c.port}", database: postgres, user: ${ROLES.tls}, password: "\${env:PW_TLS}", sslmode: verify-full, ca: ${ca}`),
      connector('no-tls-require', `address: "${SHARED_PG}", database: postgres, user: postgres, sslmode: require`),
      connector('no-tls-verify', `address: "${SHARED_PG}", database: postgres, user: postgres, sslmode: verify-full, ca: ${ca}`),
    ].join('')}
`,
  });
  const gw = tg;

  t.test('the cluster stores the verifiers this test relies on', async (t) => {
    const admin = new pg.Client({ host: dir, port: c.port, user: 'postgres', database: 'postgres' });
    await admin.connect();
    try {
      const { rows } = await admin.query<{ rolname: string; kind: string }>(`SELECT rolname, split_part(rolpassword, '$', 1) AS kind FROM pg_authid WHERE rolname LIKE 'gh\\_%' ORDER BY rolname`);
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
    for (const [name, role] of [['md5', ROLES.md5], ['clear', ROLES.clear]] as const) {
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
    t.ok(units.some((e) => /current_user/.test(e.unit?.text ?? '')), 'statements are audited');
  });

  t.test('a hostssl-only role is refused over clear text (the cluster really enforces TLS)', async (t) => {
    const e = await tryLogin(gw, 'tls-plain');
    t.ok(e instanceof Error, 'refused');
    if (e instanceof Error) t.match(e.message, /no pg_hba\.conf entry .*no encryption/);
  });

  for (const name of ['bad-scram', 'bad-md5', 'bad-clear']) {
    t.test(`a wrong upstream password (${name}) is a clear error, audited, and never shown`, async (t) => {
      const e = await tryLogin(gw, name);
      t.ok(e instanceof Error, 'login refused');
      if (!(e instanceof Error)) return void (await e.end());
      t.comment(`${name}: ${e.code} ${e.message}`);
      t.equal(e.code, '28P01');
      t.match(e.message, /^gatehouse: upstream refused the login: password authentication failed for user "gh_/);
      for (const s of secrets) t.notOk(e.message.includes(s), 'no password in the error');
      const events = await settledEvents(gw.dataDir, name, 2);
      t.same(events.map((x) => x.kind), ['session.start', 'session.end']);
      t.equal(events[0].identity?.subject, 'svc:billing', 'the caller is identified');
      t.match(events[1].meta?.reason, /^upstream login failed: 28P01 .*password authentication failed/, 'the audit says why');
    });
  }

  t.test('verify-full with the wrong CA fails the caller clearly and never falls back to clear text', async (t) => {
    const e = await tryLogin(gw, 'wrong-ca');
    t.ok(e instanceof Error, 'login refused');
    if (!(e instanceof Error)) return void (await e.end());
    t.comment(`wrong-ca: ${e.code} ${e.message}`);
    t.equal(e.code, '08001');
    t.match(e.message, /^gatehouse: upstream TLS failed: .*(certificate|issuer)/);
    const events = await settledEvents(gw.dataDir, 'wrong-ca', 2);
    t.match(events[1]?.meta?.reason, /^upstream login failed: 08001 upstream TLS failed/, 'audited with the reason');
  });

  t.test('verify-full checks the host name', async (t) => {
    const e = await tryLogin(gw, 'wrong-host');
    t.ok(e instanceof Error, 'login refused');
    if (!(e instanceof Error)) return void (await e.end());
    t.comment(`wrong-host: ${e.code} ${e.message}`);
    t.equal(e.code, '08001');
    t.match(e.message, /upstream TLS failed: .*127\.0\.0\.2/);
  });

  t.test('require / verify-full against a server without TLS fail rather than log in in clear text', async (t) => {
    for (const name of ['no-tls-require', 'no-tls-verify']) {
      const e = await tryLogin(gw, name);
      t.ok(e instanceof Error, `${name}: login refused`);
      if (!(e instanceof Error)) {
        await e.end();
        continue;
      }
      t.comment(`${name}: ${e.code} ${e.message}`);
      t.equal(e.code, '08001');
      t.match(e.message, /upstream refused TLS \(sslmode=(require|verify-full)\)/);
    }
  });

  t.test('no upstream password anywhere in the gateway data directory', async (t) => {
    const stored = allStoredBytes(gw.dataDir);
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
