/**
 * Rules cannot be dodged by indirection, end to end: a real gateway in front of the local
 * PostgreSQL refuses procedural code that would run a denied statement (DO blocks with
 * dynamic SQL, function and procedure bodies, triggers), sees MERGE … DELETE as a delete and
 * `WHERE true` as no WHERE — and the real database shows that nothing was dropped or deleted.
 */
import t from 'tap';
import type pg from 'pg';
import { startTestGateway, TOKENS } from '../../lib/gateway.js';
import { connectorsYaml, dbUpstream, postgresConnector } from '../../lib/postgres.js';
import { createTestDb, direct, gatewayClient } from './pg-env.js';

const RULES = ['{ name: no-drop, match: { statement: [drop] }, action: deny }', '{ name: bulk-write, match: { statement: [delete, update], where: absent }, action: review }'];

t.test('indirection through procedural code, MERGE and trivial WHERE', async (t) => {
  const db = await createTestDb('ind');
  const upstream = dbUpstream(db, 'prefer');
  const tg = await startTestGateway({
    env: { PG_PASSWORD: db.password },
    yaml: connectorsYaml([
      postgresConnector({ upstream, rules: RULES }),
      postgresConnector({ name: 'pg-ops', upstream, rules: ['{ name: ops-do, match: { statement: [do] }, action: allow }', ...RULES] }),
    ]),
  });
  const clients: pg.Client[] = [];
  t.teardown(async () => {
    for (const c of clients) await c.end().catch(() => {});
    await tg.stop();
    await db.drop();
  });

  await direct(
    db,
    `CREATE TABLE v (id int PRIMARY KEY, note text);
     INSERT INTO v VALUES (1, 'a'), (2, 'b'), (3, 'c');
     CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;`,
  );
  const c = await gatewayClient(tg.address('pg'), TOKENS.billing);
  clients.push(c);
  const refused = (sql: string) =>
    c.query(sql).then(
      () => null,
      (e: { code?: string; message: string }) => e,
    );
  const tableExists = async (name: string) => (await direct(db, 'SELECT to_regclass($1) IS NOT NULL AS ok', [name])).rows[0].ok as boolean;
  const rows = async () => (await direct(db, 'SELECT count(*)::int AS n FROM v')).rows[0].n as number;

  t.test('DO with dynamic SQL is refused (opaque-procedure)', async (t) => {
    const e = await refused("DO $$BEGIN EXECUTE 'DR'||'OP TABLE v'; END$$");
    t.equal(e?.code, '42501');
    t.match(e?.message, /opaque-procedure|cannot be judged/);
    t.ok(await tableExists('v'), 'v still exists');
    // A static DROP inside a DO block is judged like the DROP itself.
    const s = await refused('DO $$BEGIN DROP TABLE v; END$$');
    t.match(s?.message, /no-drop/);
    t.ok(await tableExists('v'));
  });

  t.test('CREATE FUNCTION / PROCEDURE whose body drops is refused at CREATE', async (t) => {
    const f = await refused('CREATE FUNCTION zap() RETURNS void LANGUAGE plpgsql AS $$BEGIN DROP TABLE v; END$$');
    t.equal(f?.code, '42501');
    t.match(f?.message, /no-drop/);
    const sqlf = await refused('CREATE FUNCTION zap_sql() RETURNS void LANGUAGE sql AS $$DROP TABLE v$$');
    t.match(sqlf?.message, /no-drop/);
    const p = await refused('CREATE PROCEDURE zap_proc() LANGUAGE plpgsql AS $$BEGIN DROP TABLE v; END$$');
    t.equal(p?.code, '42501');
    t.match(p?.message, /no-drop/);
    const made = await direct(db, "SELECT count(*)::int AS n FROM pg_proc WHERE proname IN ('zap', 'zap_sql', 'zap_proc')");
    t.equal(made.rows[0].n, 0, 'no function or procedure was created');
    t.ok(await tableExists('v'));
  });

  t.test('CREATE TRIGGER is refused (its function is not visible here)', async (t) => {
    const e = await refused('CREATE TRIGGER tr BEFORE DELETE ON v FOR EACH ROW EXECUTE FUNCTION touch()');
    t.equal(e?.code, '42501');
    t.match(e?.message, /opaque-procedure|cannot be judged/);
    t.equal((await direct(db, "SELECT count(*)::int AS n FROM pg_trigger WHERE tgname = 'tr'")).rows[0].n, 0);
  });

  t.test('MERGE … WHEN MATCHED THEN DELETE is a delete; DELETE … WHERE true has no WHERE', async (t) => {
    const m = await refused('MERGE INTO v USING (SELECT 1 AS id) s ON true WHEN MATCHED THEN DELETE');
    t.match(m?.message, /bulk-write/, 'MERGE delete with a trivial join is a bulk delete');
    const d = await refused('DELETE FROM v WHERE true');
    t.match(d?.message, /bulk-write/);
    const u = await refused("UPDATE v SET note = 'x' WHERE 1 = 1");
    t.match(u?.message, /bulk-write/);
    t.equal(await rows(), 3, 'nothing was deleted');
    // A filtered MERGE delete is an ordinary delete and runs.
    const ok = await c.query('MERGE INTO v USING (SELECT 3 AS id) s ON v.id = s.id WHEN MATCHED THEN DELETE');
    t.equal(ok.rowCount, 1);
    t.equal(await rows(), 2);
  });

  t.test('an explicit allow rule lets a DO block with dynamic SQL run', async (t) => {
    const ops = await gatewayClient(tg.address('pg-ops'), TOKENS.billing);
    clients.push(ops);
    await ops.query("DO $$BEGIN EXECUTE 'CREATE TABLE ran_' || 'do (x int)'; END$$");
    t.ok(await tableExists('ran_do'), 'the block ran');
    // The other rules still apply on that connector.
    await t.rejects(ops.query('DROP TABLE v'), { code: '42501', message: /no-drop/ });
    t.ok(await tableExists('v'));
  });
});
