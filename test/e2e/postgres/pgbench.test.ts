/**
 * pgbench through the gateway: `pgbench -i` (DDL, COPY FROM STDIN, VACUUM) and short runs
 * in each query mode. Counts and failures are asserted, never timings.
 */
import t from 'tap';
import { readEvents } from '@gatehouse/audit';
import { startTestGateway, TOKENS } from '../../lib/gateway.js';
import { connectorsYaml, dbUpstream, postgresConnector } from '../../lib/postgres.js';
import { createTestDb, direct, runClient } from './pg-env.js';

t.test('pgbench -i and -M simple|extended|prepared through the gateway', async (t) => {
  const db = await createTestDb('pgbench');
  const tg = await startTestGateway({
    yaml: connectorsYaml(
      [
        postgresConnector({
          upstream: dbUpstream(db, 'disable', { password: false }),
          rules: [`{ name: contractors-no-ddl, when: 'identity.groups.exists(g, g == "contractors")', match: { statement: [drop, truncate, create] }, action: deny }`],
          masking: ['{ columns: [filler], with: redact, exempt: { groups: [analysts] } }'],
        }),
      ],
      '{ durability: batched, window_ms: 5 }',
    ),
  });
  t.teardown(async () => {
    await tg.stop();
    await db.drop();
  });
  const { host, port } = tg.address('pg');
  const conn = ['-h', host, '-p', String(port), '-U', 'bench', 'db'];
  const env = { PGPASSWORD: TOKENS.billing, PGSSLMODE: 'require' };

  const init = await runClient('pgbench', ['-i', '-s', '1', '-q', ...conn], env, { timeoutMs: 60_000 });
  t.equal(init.code, 0, init.stderr);
  t.equal((await direct(db, 'SELECT count(*)::int AS n FROM pgbench_accounts')).rows[0].n, 100_000);

  for (const mode of ['simple', 'extended', 'prepared']) {
    const r = await runClient('pgbench', ['-M', mode, '-c', '2', '-t', '50', '-n', ...conn], env, { timeoutMs: 60_000 });
    t.equal(r.code, 0, `${mode}: ${r.stderr}`);
    t.match(r.stdout, /number of transactions actually processed: 100\/100/, mode);
    t.match(r.stdout, /number of failed transactions: 0 /, mode);
  }
  const selectOnly = await runClient('pgbench', ['-S', '-M', 'prepared', '-c', '2', '-t', '50', '-n', ...conn], env, { timeoutMs: 60_000 });
  t.match(selectOnly.stdout, /actually processed: 100\/100/);

  const contractor = await runClient('pgbench', ['-i', '-s', '1', '-q', ...conn], { ...env, PGPASSWORD: TOKENS.contractor }, { timeoutMs: 60_000 });
  t.not(contractor.code, 0);
  t.match(contractor.stderr, /contractors-no-ddl/);

  // Each tpcb-like transaction is 7 statements; 3 modes × 100 transactions, all audited.
  const updates = readEvents(tg.dataDir, { connector: 'pg', kind: 'unit', limit: 10_000 }).filter((e) => /^UPDATE pgbench_accounts/.test(e.unit?.text ?? ''));
  t.equal(updates.length, 300);
  t.ok(updates.every((e) => e.result?.rows === 1 && e.decision?.action === 'allow'));
});
