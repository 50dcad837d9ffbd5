/**
 * sysbench oltp_read_write (the real tool, libmariadb) through the MySQL connector, with
 * server-side prepared statements (`--db-ps-mode=auto`: binary protocol) and without
 * (`disable`: text protocol). Every statement sysbench counts is in the audit trail, and no
 * transaction fails (the caller is masked: restricted SQL runs on every statement).
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { iterateEvents } from '@gatehouse/audit';
import { startTestGateway, TOKENS } from '../../lib/gateway.js';
import { createTestDb } from './my-env.js';

function sysbench(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile('sysbench', ['oltp_read_write', '--tables=2', '--table-size=500', ...args], { timeout: 120_000, encoding: 'utf8' }, (err, stdout, stderr) =>
      resolve({ code: err ? 1 : 0, out: stdout + stderr }),
    );
  });
}

const have = await new Promise<boolean>((r) => execFile('sysbench', ['--version'], (e) => r(!e)));

t.test('sysbench oltp_read_write through the gateway', { skip: have ? false : 'sysbench is not installed (scripts/ensure-system-deps.sh installs it)' }, async (t) => {
  const db = await createTestDb('sb');
  t.teardown(() => db.drop());
  const prep = await sysbench([
    '--mysql-host=127.0.0.1',
    '--mysql-port=3306',
    `--mysql-user=${db.user}`,
    `--mysql-password=${db.password}`,
    `--mysql-db=${db.database}`,
    'prepare',
  ]);
  t.equal(prep.code, 0, prep.code ? prep.out : 'sysbench prepare');
  const tg = await startTestGateway({
    env: { PW: db.password },
    yaml: `
audit: { durability: batched }
connectors:
  - name: sb
    type: mysql
    listen: 127.0.0.1:0
    upstream: { address: 127.0.0.1:3306, database: ${db.database}, user: ${db.user}, password: "\${env:PW}" }
    allow: [ { groups: [payments] } ]
    rules:
      - { name: no-drop, match: { statement: [drop] }, action: deny }
    masking:
      - { columns: [pad], with: last4 }
`,
  });
  t.teardown(() => tg.stop());
  const { host, port } = tg.address('sb');
  let counted = 0;
  for (const mode of ['auto', 'disable']) {
    const r = await sysbench([
      `--mysql-host=${host}`,
      `--mysql-port=${port}`,
      '--mysql-user=app',
      `--mysql-password=${TOKENS.analyst}`,
      `--mysql-db=${db.database}`,
      '--threads=2',
      '--time=3',
      `--db-ps-mode=${mode}`,
      'run',
    ]);
    t.equal(r.code, 0, r.code ? r.out : `sysbench --db-ps-mode=${mode} ran`);
    const tx = Number(/transactions:\s+(\d+)/.exec(r.out)?.[1] ?? 0);
    const queries = Number(/queries:\s+(\d+)/.exec(r.out)?.[1] ?? 0);
    t.ok(tx > 10, `--db-ps-mode=${mode}: ${tx} transactions`);
    t.notMatch(r.out, /FATAL/);
    counted += queries;
  }
  await new Promise((r) => setTimeout(r, 300));
  const units = [...iterateEvents(tg.dataDir, { connector: 'sb', kind: 'unit' })];
  // sysbench's own count (it may stop mid-transaction at the deadline: a few more reach the gateway).
  t.ok(units.length >= counted, `${units.length} audited units for ${counted} statements sysbench counted`);
  t.ok(
    units.some((e) => (e.unit?.params?.length ?? 0) > 0),
    'prepared statements audited with their parameters',
  );
});
