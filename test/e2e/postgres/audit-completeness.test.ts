/**
 * "Complete trail" (DESIGN.md, Guarantees): every statement the server executed is in the
 * Gatehouse audit trail, checked against the server's own record of what it ran.
 *
 * A throwaway PostgreSQL 15 cluster of this test's own logs every statement
 * (`log_statement = all`, see log-cluster.ts). A real gateway (strict audit, a deny rule on
 * DROP, a masking rule on `t.card`) sits in front of it, and a mixed workload goes through
 * the gateway: psql (multi-statement -c, -f with a transaction and failures, ON_ERROR_STOP
 * off), pgbench -M extended / prepared, the pg driver with parameters and a run-time error,
 * and hand-written extended-protocol pipelines with errors in them. Then the multiset of
 * statements the server logged as executed for the callers' sessions must equal the multiset
 * of `unit` events the trail records as allowed. The counts are printed; the failure message
 * lists, per caller session, exactly which statements are missing from the trail or extra.
 *
 * How the two sides are made comparable:
 * - Caller sessions. Every caller connects with its own `application_name`, which the gateway
 *   forwards upstream, and which the log prefix (%a) and the trail's session.start event
 *   (meta.application_name) both carry. Server side, a caller statement is one logged by a
 *   backend of the gateway's upstream role with one of those names; the test's own direct
 *   connections (set-up, pgbench -i) use SETUP_APP and are excluded, as would be any
 *   connection of the gateway itself (listed in a comment, there are none today). Trail
 *   side, the caller's units are those of sessions whose start event names a caller app.
 *   Items are compared as (application_name, statement) so a statement is also checked to
 *   be recorded for the right caller.
 * - Granularity. The server logs `statement: …` once per simple Query message, which may
 *   hold several statements; the gateway writes one unit per statement. So a logged Query is
 *   split into its statements (splitStatements, independent of the gateway's parser). A
 *   multi-statement Query stops at its first failing statement; the log says that the
 *   message failed (an ERROR whose STATEMENT is the message) but not at which statement, so
 *   the cut is placed at the first statement of the message that the trail records as
 *   failed. The statements after it never ran; the relay records them with decision allow
 *   and result status `skipped`: those are not counted as executed, and must be exactly the
 *   statements cut off here.
 *   `execute <name>: …` is logged once per extended-protocol Execute, before it runs (Parse
 *   and Bind are not logged): one unit each. Texts are compared with whitespace collapsed
 *   and trailing semicolons dropped (pgbench and psql send them, the gateway's statement
 *   text omits them).
 * - Refusals. The gateway refuses a statement by sending a
 *   `DO $gatehouse$ … RAISE EXCEPTION … $gatehouse$` block upstream in its place. Such a
 *   block is the gateway's, not the caller's: each one is matched (by its message) to a
 *   deny event of the same caller and taken out of the comparison; the refused statement
 *   itself must never appear as executed.
 * - "Allowed units" below means decision allow and a status other than `skipped`.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { serialize } from 'pg-protocol';
import { readEvents } from '@gatehouse/audit';
import type { AuditEvent } from '@gatehouse/core';
import { startTestGateway, TOKENS, type TestGateway } from '../../lib/gateway.js';
import { connectorsYaml, postgresConnector } from '../../lib/postgres.js';
import type { TapTest } from '../../lib/tap.js';
import { loggedStatements, normalizeSql, parseServerLog, splitStatements, startLogCluster, stopLogCluster, type LoggedStatement } from './log-cluster.js';
import { runClient } from './pg-env.js';

const ROLE = 'gh_app';
const DATABASE = 'acdb';
/** application_name of the test's own direct connections (never through the gateway). */
const SETUP_APP = 'ac-setup';
const CARD = '4111111111111111';

/** Every application_name a caller uses through the gateway (one per connection or client run). */
const CALLER_APPS = new Set<string>();
const caller = (name: string) => {
  const app = `ac-${name}`;
  CALLER_APPS.add(app);
  return app;
};

t.test('every statement the server executed is in the Gatehouse audit trail', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-complete-'));
  const work = mkdtempSync(join(tmpdir(), 'gh-complete-work-'));
  let tg: TestGateway | null = null;
  const clients: pg.Client[] = [];
  const raws: RawClient[] = [];
  // Registered before anything starts, so a failure half-way still stops and removes it all.
  t.teardown(async () => {
    for (const c of clients) await c.end().catch(() => {});
    for (const r of raws) r.destroy();
    await tg?.stop();
    await stopLogCluster(dir);
    rmSync(dir, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  });

  const password = `pw-${randomBytes(9).toString('hex')}`;
  const cluster = await startLogCluster(dir, { hba: ['local all all trust', `host all ${ROLE} 127.0.0.1/32 scram-sha-256`] });
  const direct = async (user: string, database: string, sqls: string[]) => {
    const c = new pg.Client({ host: dir, port: cluster.port, user, database, application_name: SETUP_APP });
    await c.connect();
    try {
      for (const s of sqls) await c.query(s);
    } finally {
      await c.end();
    }
  };
  // (log_statement off for this one: the password stays out of the server log)
  await direct('postgres', 'postgres', [`SET log_statement = 'none'`, `CREATE ROLE ${ROLE} LOGIN PASSWORD '${password}'`, `CREATE DATABASE ${DATABASE} OWNER ${ROLE}`]);
  await direct(ROLE, DATABASE, ['CREATE TABLE t (id int PRIMARY KEY, v text, card text)', `INSERT INTO t VALUES (1, 'one', '${CARD}'), (2, 'two', '5500000000000004')`]);
  const init = await runClient('pgbench', ['-i', '-s', '1', '-q', '-h', dir, '-p', String(cluster.port), '-U', ROLE, DATABASE], { PGAPPNAME: SETUP_APP }, { timeoutMs: 60_000 });
  t.equal(init.code, 0, `pgbench -i: ${init.stderr}`);

  tg = await startTestGateway({
    env: { PG_PASSWORD: password },
    yaml: connectorsYaml([
      postgresConnector({
        upstream: `{ address: "127.0.0.1:${cluster.port}", database: ${DATABASE}, user: ${ROLE}, password: "\${env:PG_PASSWORD}", sslmode: disable }`,
        rules: ['{ name: no-drop, match: { statement: [drop] }, action: deny }'],
        masking: ['{ columns: [card], with: last4 }'],
      }),
    ]),
  });
  const gw = tg;
  const addr = gw.address('pg');
  const psqlAs = (app: string, args: string[]) =>
    runClient(
      'psql',
      ['-X', '-v', 'ON_ERROR_STOP=0', '-At', `host=${addr.host} port=${addr.port} user=anything dbname=whatever sslmode=require application_name=${app}`, ...args],
      {
        PGPASSWORD: TOKENS.billing,
        PGCONNECT_TIMEOUT: '10',
      },
    );
  const raw = async (app: string) => {
    const r = await RawClient.connect(addr, app, TOKENS.billing);
    raws.push(r);
    return r;
  };

  // ---- the workload -------------------------------------------------------------------

  /**
   * A workload step. An exception in it (a connection the gateway closed, …) fails the step
   * but not the run: the comparison below still runs and shows what the trail lacks.
   */
  const step = (name: string, fn: (t: TapTest) => Promise<void>) =>
    t.test(name, async (t) => {
      try {
        await fn(t);
      } catch (e) {
        t.fail(`${name}: ${(e as Error).message}`);
      }
    });

  step('psql: multi-statement -c, masking', async (t) => {
    const r = await psqlAs(caller('psql-multi'), ['-c', 'SELECT 1 AS one; SELECT 2 AS two', '-c', 'SELECT id, card FROM t ORDER BY id']);
    t.equal(r.code, 0, r.stderr);
    t.same(r.stdout.trim().split('\n'), ['1', '2', '1|************1111', '2|************0004']);
  });

  step('psql: a multi-statement -c failing in the middle, then more', async (t) => {
    const r = await psqlAs(caller('psql-failmid'), ['-c', 'SELECT 10 AS ten; SELECT 1/0 AS boom; SELECT 30 AS thirty', '-c', 'SELECT 40 AS forty']);
    t.match(r.stderr, /division by zero/);
    t.match(r.stdout, /40/);
    t.notMatch(r.stdout, /30/, 'the statement after the failure did not run');
  });

  step('psql -f: a transaction with failures, multi-line statements, quoting', async (t) => {
    const script = join(work, 'script.sql');
    writeFileSync(
      script,
      `BEGIN;
INSERT INTO t (id, v, card) VALUES (10, 'ten', '4012888888881881');
SELECT 1/0 AS in_tx_failure;
INSERT INTO t (id, v, card) VALUES (11, 'eleven', '4012888888881881');
ROLLBACK;
SELECT id,
       v
  FROM t
 WHERE id = 1;
SELECT 'a;b' AS semi, $$c;
d$$ AS dollar, E'e\\';f' AS escaped;
-- a comment before a statement
SELECT count(*) AS n FROM t WHERE v <> 'x';
SELECT no_such_column FROM t;
SELECT 'after the error' AS still_running;
`,
    );
    const r = await psqlAs(caller('psql-script'), ['-f', script]);
    t.match(r.stderr, /division by zero/);
    t.match(r.stderr, /current transaction is aborted/);
    t.match(r.stderr, /no_such_column/);
    t.match(r.stdout, /after the error/);
  });

  step('psql: DROP is refused, alone and inside a multi-statement string', async (t) => {
    const r = await psqlAs(caller('psql-deny'), ['-c', 'DROP TABLE t', '-c', 'SELECT 5 AS five; DROP TABLE t', '-c', 'SELECT 6 AS six']);
    t.equal((r.stderr.match(/denied by rule "no-drop"/g) ?? []).length, 2, r.stderr);
    t.same(r.stdout.trim().split('\n'), ['6'], 'nothing of a refused message ran');
  });

  for (const mode of ['extended', 'prepared']) {
    step(`pgbench -M ${mode}`, async (t) => {
      const r = await runClient(
        'pgbench',
        ['-M', mode, '-c', '2', '-t', '100', '-n', '-h', addr.host, '-p', String(addr.port), '-U', 'bench', 'whatever'],
        {
          PGPASSWORD: TOKENS.billing,
          PGSSLMODE: 'require',
          PGAPPNAME: caller(`pgbench-${mode}`),
        },
        { timeoutMs: 60_000 },
      );
      t.equal(r.code, 0, r.stderr);
      t.match(r.stdout, /number of transactions actually processed: 200\/200/);
    });
  }

  step('pg driver: parameters, a run-time error in Execute, then more on the same connection', async (t) => {
    const c = new pg.Client({ host: addr.host, port: addr.port, user: 'anything', database: 'whatever', password: TOKENS.billing, application_name: caller('pg-driver') });
    clients.push(c);
    c.on('error', () => {}); // a session the gateway ends is a failed step, not a crash
    await c.connect();
    t.same((await c.query('SELECT id, v FROM t WHERE id = $1', [2])).rows, [{ id: 2, v: 'two' }]);
    t.equal((await c.query('UPDATE t SET v = $1 WHERE id = $2', ['uno', 1])).rowCount, 1);
    const e = await c.query('SELECT 1/(id-1) AS r FROM t WHERE $1', [true]).then(
      () => null,
      (x: Error & { code?: string }) => x,
    );
    t.equal(e?.code, '22012', 'division by zero while executing');
    const all = await c.query<{ id: number; card: string }>('SELECT * FROM t ORDER BY id');
    t.equal(all.rows.length, 2);
    t.notOk(
      all.rows.some((r) => /^\d{16}$/.test(r.card)),
      `card stays masked after the error (got ${all.rows.map((r) => r.card).join(', ')})`,
    );
    t.same((await c.query('SELECT v FROM t WHERE id = $1', [1])).rows, [{ v: 'uno' }]);
    t.same((await c.query('SELECT $1::text AS last', ['end'])).rows, [{ last: 'end' }]);
    await c.end();
  });

  step('raw pipeline: an Execute error in the middle of a batch, a Bind error, more batches', async (t) => {
    const r = await raw(caller('raw-pipeline'));
    // A run-time error in Execute (after one row): `1/0` would fail already at Bind, where the
    // planner folds it (Bind errors are covered below).
    r.send(...pbe('SELECT $1::int AS a', ['1']), ...pbe(EXEC_ERROR('boom')), ...pbe('SELECT 3 AS skipped_by_server'), SYNC);
    t.same(errorCodes(await r.untilReady()), ['22012']);
    r.send(...pbe('INSERT INTO t (id, v, card) VALUES ($1, $2, $3)', ['20', 'twenty', CARD]), ...pbe('SELECT count(*) AS n FROM t'), SYNC);
    t.same(errorCodes(await r.untilReady()), []);
    // A Bind that fails (bad parameter): neither it nor the rest of the batch runs.
    r.send(...pbe('SELECT $1::int AS bad_param', ['not a number']), ...pbe('SELECT 4 AS skipped_after_bind_error'), SYNC);
    t.same(errorCodes(await r.untilReady()), ['22P02']);
    r.send(...pbe('SELECT 1/0 AS fails_at_bind'), ...pbe('SELECT 5 AS skipped_after_bind_error'), SYNC);
    t.same(errorCodes(await r.untilReady()), ['22012']);
    r.send(...pbe('DELETE FROM t WHERE id = $1', ['20']), SYNC);
    t.same(errorCodes(await r.untilReady()), []);
    await r.end();
  });

  step('raw pipeline: an Execute error right before Sync, then the next batch', async (t) => {
    const r = await raw(caller('raw-lasterr'));
    r.send(...pbe('SELECT 1 AS before_error'), ...pbe(EXEC_ERROR('last_before_sync')), SYNC);
    t.same(errorCodes(await r.untilReady()), ['22012']);
    r.send(...pbe('SELECT 2 AS batch_after_error'), SYNC);
    t.same(errorCodes(await r.untilReady()), []);
    r.send(QUERY('SELECT 3 AS simple_after_error'));
    t.same(errorCodes(await r.untilReady()), []);
    await r.end();
  });

  step('raw pipeline: the same with both batches in one write', async (t) => {
    const r = await raw(caller('raw-pipelined'));
    r.send(...pbe(EXEC_ERROR('pipelined_error')), SYNC, ...pbe('SELECT 2 AS pipelined_after_error'), SYNC);
    t.same(errorCodes(await r.untilReady(2)), ['22012']);
    r.send(...pbe('SELECT 3 AS pipelined_last'), SYNC);
    t.same(errorCodes(await r.untilReady()), []);
    await r.end();
  });

  step('raw simple Query: several statements, one failing in the middle', async (t) => {
    const r = await raw(caller('raw-simple'));
    r.send(QUERY('SELECT 1 AS a; SELECT 1/0 AS b; SELECT 3 AS c_not_run'));
    t.same(errorCodes(await r.untilReady()), ['22012']);
    r.send(QUERY('SELECT 4 AS d;\nSELECT 5 AS e'));
    t.same(errorCodes(await r.untilReady()), []);
    await r.end();
  });

  step('raw pipeline: a refused DROP in a batch', async (t) => {
    const r = await raw(caller('raw-deny'));
    r.send(...pbe('SELECT 1 AS before_deny'), ...pbe('DROP TABLE t'), ...pbe('SELECT 2 AS discarded_after_deny'), SYNC);
    t.same(errorCodes(await r.untilReady()), ['42501']);
    r.send(...pbe('SELECT 3 AS after_deny'), SYNC);
    t.same(errorCodes(await r.untilReady()), []);
    await r.end();
  });

  // ---- the comparison -----------------------------------------------------------------

  t.test('the trail holds exactly the statements the server executed', async (t) => {
    const events = await settledEvents(gw.dataDir);
    const appOf = new Map<string, string>();
    for (const e of events) if (e.kind === 'session.start') appOf.set(e.session, (e.meta as { application_name?: string } | undefined)?.application_name ?? '');
    const units = events.filter((e) => e.kind === 'unit' && CALLER_APPS.has(appOf.get(e.session) ?? ''));
    const foreign = events.filter((e) => e.kind === 'unit' && !CALLER_APPS.has(appOf.get(e.session) ?? ''));
    t.equal(foreign.length, 0, 'no unit in the trail from a session the test did not open');
    // The relay also records the statements of a multi-statement Query that never ran after
    // an earlier one failed: decision allow (the policy's), result.status 'skipped'. They are
    // not executed statements; they are checked separately below.
    const allowedAll = units.filter((e) => e.decision?.action === 'allow');
    const skipped = allowedAll.filter((e) => e.result?.status === 'skipped');
    const allowed = allowedAll.filter((e) => e.result?.status !== 'skipped');
    const denied = units.filter((e) => e.decision?.action === 'deny');

    const { records, stray } = parseServerLog(cluster.readLog());
    if (stray.length > 0) t.comment(`server log lines without the prefix (ignored): ${stray.slice(0, 5).join(' | ')}`);
    const logged = loggedStatements(records);
    const isCaller = (s: { user: string | null; app: string | null }) => s.user === ROLE && s.app !== null && CALLER_APPS.has(s.app);
    const callerLogged = logged.filter(isCaller);
    const others = new Map<string, number>();
    for (const s of logged.filter((s) => !isCaller(s))) others.set(`${s.user}/${s.app}`, (others.get(`${s.user}/${s.app}`) ?? 0) + 1);
    t.comment(`not the callers' (excluded): ${[...others].map(([k, n]) => `${k}: ${n}`).join(', ') || 'none'}`);
    const helpers = new Set(logged.filter((s) => s.user === ROLE && s.app !== SETUP_APP && !isCaller(s)).map((s) => `${s.app} [${s.pid}]`));
    t.comment(`the gateway's own upstream sessions (neither set-up nor a caller): ${[...helpers].join(', ') || 'none'}`);

    // Refusal blocks: the gateway's, matched one to one to the deny event they answer.
    const denyPool = denied.filter((e) => !String(e.result?.error ?? '').startsWith('not executed'));
    const refusals: LoggedStatement[] = [];
    const unmatchedRefusals: string[] = [];
    const executed: LoggedStatement[] = [];
    for (const s of callerLogged) {
      const msg = gatewayRefusal(s.text);
      if (msg === null) {
        executed.push(s);
        continue;
      }
      const i = denyPool.findIndex((e) => appOf.get(e.session) === s.app && e.result?.error === msg);
      if (i < 0) {
        unmatchedRefusals.push(`${s.app}: ${msg}`);
        executed.push(s); // not explained by a refusal: then it is a statement like any other
        continue;
      }
      denyPool.splice(i, 1);
      refusals.push(s);
    }

    // Failed allowed units per caller, to find where a failed multi-statement Query stopped.
    const failedPool = new Multiset();
    for (const e of allowed) if (e.result?.error) failedPool.add(key(appOf.get(e.session) ?? '', e.unit?.text ?? ''));
    const server = new Multiset();
    const notRun = new Multiset();
    const notes: string[] = [];
    for (const s of executed) {
      const app = s.app ?? '';
      if (s.kind === 'execute') {
        server.add(key(app, s.text));
        continue;
      }
      let stmts = splitStatements(s.text);
      if (s.error !== null && stmts.length > 1) {
        const k = stmts.findIndex((x) => failedPool.take(key(app, x)));
        if (k >= 0) {
          for (const x of stmts.slice(k + 1)) notRun.add(key(app, x));
          stmts = stmts.slice(0, k + 1);
        } else notes.push(`line ${s.line} (${app}): the Query failed (${s.error}) but the trail has none of its statements as failed; all of them are expected`);
      }
      for (const x of stmts) server.add(key(app, x));
    }
    const trailSkipped = new Multiset();
    for (const e of skipped) trailSkipped.add(key(appOf.get(e.session) ?? '', e.unit?.text ?? ''));
    const trail = new Multiset();
    for (const e of allowed) trail.add(key(appOf.get(e.session) ?? '', e.unit?.text ?? ''));

    const missing = server.minus(trail);
    const extra = trail.minus(server);
    t.comment(
      `server executed ${server.size} caller statements (${callerLogged.length} log entries: ${executed.length} caller, ${refusals.length} gateway refusal blocks); ` +
        `trail has ${trail.size} allowed units, ${trailSkipped.size} allowed-but-skipped, ${denied.length} denied`,
    );
    t.comment(`per caller (server / trail): ${[...CALLER_APPS].map((a) => `${a} ${server.countApp(a)}/${trail.countApp(a)}`).join(', ')}`);
    for (const n of notes) t.comment(n);
    if (missing.length > 0) t.comment(`executed by the server, missing from the trail:\n  ${missing.join('\n  ')}`);
    if (extra.length > 0) t.comment(`allowed in the trail, not executed by the server:\n  ${extra.join('\n  ')}`);
    t.ok(server.size > 1000, 'the workload really went through the server');
    t.same(missing, [], 'every statement the server executed for a caller is an allowed unit in the trail');
    t.same(extra, [], 'every allowed unit in the trail was executed by the server');

    t.same(
      { notRecordedAsSkipped: notRun.minus(trailSkipped), skippedButNotCutOff: trailSkipped.minus(notRun) },
      { notRecordedAsSkipped: [], skippedButNotCutOff: [] },
      'the statements after a failure in a multi-statement Query are exactly the ones the trail records as skipped',
    );

    // Refusals: never executed, in the trail as denied, answered by exactly one refusal block.
    t.same(unmatchedRefusals, [], 'every gateway refusal block matches a deny event of that caller');
    t.same(
      denyPool.map((e) => `${appOf.get(e.session)}: ${e.unit?.text}`),
      [],
      'every refusal in the trail was answered by a refusal block upstream (none was refused while the upstream skipped to Sync)',
    );
    t.same(
      [...server.keys()].filter((k) => /\|\s*drop\b/i.test(k)),
      [],
      'the refused DROP never ran',
    );
    const deniedKeys = denied.map((e) => key(appOf.get(e.session) ?? '', e.unit?.text ?? '')).sort();
    t.same(
      deniedKeys,
      [key('ac-psql-deny', 'DROP TABLE t'), key('ac-psql-deny', 'DROP TABLE t'), key('ac-psql-deny', 'SELECT 5 AS five'), key('ac-raw-deny', 'DROP TABLE t')].sort(),
      'the refusals are in the trail as denied',
    );
    t.equal(refusals.length, 3, 'three refusal blocks reached the server (two simple, one extended)');
    t.comment(`gateway refusal blocks on the server: ${refusals.length}; deny events in the trail: ${denied.length}`);
  });
});

// ---- comparing ------------------------------------------------------------------------

const key = (app: string, sql: string) => `${app} | ${normalizeSql(sql)}`;

class Multiset {
  private readonly m = new Map<string, number>();
  size = 0;
  add(k: string): void {
    this.m.set(k, (this.m.get(k) ?? 0) + 1);
    this.size++;
  }
  take(k: string): boolean {
    const n = this.m.get(k) ?? 0;
    if (n === 0) return false;
    if (n === 1) this.m.delete(k);
    else this.m.set(k, n - 1);
    this.size--;
    return true;
  }
  keys(): IterableIterator<string> {
    return this.m.keys();
  }
  countApp(app: string): number {
    let n = 0;
    for (const [k, c] of this.m) if (k.startsWith(`${app} | `)) n += c;
    return n;
  }
  /** What this has more of than `o`, as sorted "key (×n)" lines. */
  minus(o: Multiset): string[] {
    const out: string[] = [];
    for (const [k, n] of this.m) {
      const d = n - (o.m.get(k) ?? 0);
      if (d > 0) out.push(d === 1 ? k : `${k} (×${d})`);
    }
    return out.sort();
  }
}

/**
 * The refusal message of a gateway `DO $gatehouse$ … $gatehouse$` block (see
 * connectors/postgres/src/deny.ts), or null when the text is not one.
 */
function gatewayRefusal(text: string): string | null {
  const m = /^DO \$gatehouse\$BEGIN RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = E'((?:[^'\\]|''|\\.)*)'; END\$gatehouse\$$/.exec(text.trim());
  return m ? m[1].replace(/''/g, "'").replace(/\\(.)/g, '$1') : null;
}

/** All events of the connector, once every session has ended (bounded wait). */
async function settledEvents(dataDir: string): Promise<AuditEvent[]> {
  const until = Date.now() + 10_000;
  for (;;) {
    const events: AuditEvent[] = [];
    let since = 0;
    for (;;) {
      const batch = readEvents(dataDir, { connector: 'pg', sinceSeq: since, limit: 10_000 });
      events.push(...batch);
      if (batch.length < 10_000) break;
      since = batch[batch.length - 1].seq;
    }
    const starts = events.filter((e) => e.kind === 'session.start').length;
    const ends = events.filter((e) => e.kind === 'session.end').length;
    if (starts === ends || Date.now() > until) return events;
    await new Promise((r) => setTimeout(r, 50));
  }
}

// ---- a minimal PostgreSQL frontend over a plain socket ------------------------------------

// The messages come from pg-protocol (the pg driver's own encoder): this client decides what to
// send when, not how to encode it.
const SYNC = serialize.sync();
const QUERY = (sql: string) => serialize.query(sql);
const TERMINATE = serialize.end();
/** Parse, Bind and Execute of one statement on the unnamed statement and portal. */
const pbe = (sql: string, params: string[] = []) => [serialize.parse({ text: sql }), serialize.bind({ values: params }), serialize.execute()];
/** Fails with 22012 while executing, after one DataRow (t has ids 2 and 1). */
const EXEC_ERROR = (label: string) => `SELECT 1/(id-1) AS ${label} FROM t WHERE id IN (1, 2) ORDER BY id DESC`;

interface BackendMessage {
  type: string;
  body: Buffer;
}

/** SQLSTATEs of the ErrorResponses among `msgs`. */
function errorCodes(msgs: BackendMessage[]): string[] {
  return msgs.filter((m) => m.type === 'E').map((m) => errorField(m.body, 'C'));
}

function errorField(body: Buffer, field: string): string {
  let i = 0;
  while (i < body.length && body[i] !== 0) {
    const end = body.indexOf(0, i + 1);
    if (String.fromCharCode(body[i]) === field) return body.toString('utf8', i + 1, end);
    i = end + 1;
  }
  return '';
}

class RawClient {
  private buf = Buffer.alloc(0);
  private readonly inbox: BackendMessage[] = [];
  private wake: (() => void) | null = null;
  private closed = false;

  private constructor(private readonly s: Socket) {
    s.on('data', (c: Buffer) => {
      this.buf = Buffer.concat([this.buf, c]);
      while (this.buf.length >= 5) {
        const len = this.buf.readInt32BE(1);
        if (this.buf.length < 1 + len) break;
        this.inbox.push({ type: String.fromCharCode(this.buf[0]), body: this.buf.subarray(5, 1 + len) });
        this.buf = this.buf.subarray(1 + len);
      }
      this.wake?.();
    });
    s.on('close', () => {
      this.closed = true;
      this.wake?.();
    });
    s.on('error', () => {});
  }

  /** Connect, send the startup packet and the token as the cleartext password; wait for ReadyForQuery. */
  static async connect(addr: { host: string; port: number }, app: string, token: string): Promise<RawClient> {
    const s = netConnect(addr.port, addr.host);
    await once(s, 'connect');
    const c = new RawClient(s);
    s.write(serialize.startup({ user: 'anything', database: 'whatever', application_name: app }));
    const auth = await c.next();
    if (auth.type !== 'R' || auth.body.readInt32BE(0) !== 3) throw new Error(`expected AuthenticationCleartextPassword, got ${auth.type}`);
    s.write(serialize.password(token));
    const login = await c.untilReady();
    const e = login.find((m) => m.type === 'E');
    if (e) throw new Error(`login refused: ${errorField(e.body, 'M')}`);
    return c;
  }

  send(...msgs: Buffer[]): void {
    this.s.write(Buffer.concat(msgs));
  }

  private async next(deadline = Date.now() + 10_000): Promise<BackendMessage> {
    for (;;) {
      const m = this.inbox.shift();
      if (m) return m;
      if (this.closed) throw new Error('connection closed');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting for the server');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          this.wake = null;
          resolve();
        };
      });
    }
  }

  /** Every message up to and including the `count`-th ReadyForQuery. */
  async untilReady(count = 1): Promise<BackendMessage[]> {
    const out: BackendMessage[] = [];
    const deadline = Date.now() + 10_000;
    while (count > 0) {
      const m = await this.next(deadline);
      out.push(m);
      if (m.type === 'Z') count--;
    }
    return out;
  }

  async end(): Promise<void> {
    if (this.closed) return;
    this.s.end(TERMINATE);
    await once(this.s, 'close').catch(() => {});
  }

  destroy(): void {
    this.s.destroy();
  }
}
