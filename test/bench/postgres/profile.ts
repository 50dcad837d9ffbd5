/**
 * Profiling harness: runs one pgbench load through an in-process gateway so that
 * `node --cpu-prof test/dist/bench/postgres/profile.js` captures only the gateway's work.
 * Env: PROFILE_DURABILITY (strict|batched, default batched), PROFILE_SECONDS (default 5),
 * PROFILE_MODE (pgbench -M, default prepared), PROFILE_RATE (pgbench -R: a fixed offered
 * rate, so CPU per transaction compares like with like; default: as fast as it goes),
 * PROFILE_MASKED (1: the caller is subject to masking, the default; 0: no masking rule).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startTestGateway, TOKENS } from '../../lib/gateway.js';
import { createTestDb } from '../../e2e/postgres/pg-env.js';

const run = promisify(execFile);

async function main() {
  const db = await createTestDb('prof');
  const durability = process.env.PROFILE_DURABILITY ?? 'batched';
  const tg = await startTestGateway({
    yaml: `
audit: { durability: ${durability} }
connectors:
  - name: db
    type: postgres
    listen: 127.0.0.1:0
    upstream: { address: 127.0.0.1:5432, database: ${db.database}, user: ${db.role}, sslmode: disable }
    allow: [ { groups: [payments] } ]
    rules:
      - { name: no-ddl, match: { statement: [drop, truncate] }, action: deny }
${process.env.PROFILE_MASKED === '0' ? '' : '    masking:\n      - { columns: [card_number], with: last4 }\n'}`,
  });
  const dir = mkdtempSync(join(tmpdir(), 'gh-prof-'));
  writeFileSync(join(dir, 'select1.sql'), 'SELECT 1;\n');
  const { host, port } = tg.address('db');
  const cpu0 = process.cpuUsage();
  const r = await run(
    'pgbench',
    [
      '-n',
      '-h',
      host,
      '-p',
      String(port),
      '-U',
      'bench',
      '-c',
      '8',
      '-j',
      '2',
      '-T',
      process.env.PROFILE_SECONDS ?? '5',
      '-M',
      process.env.PROFILE_MODE ?? 'prepared',
      ...(process.env.PROFILE_RATE ? ['-R', process.env.PROFILE_RATE] : []),
      '-f',
      join(dir, 'select1.sql'),
      db.database,
    ],
    { env: { ...process.env, PGPASSWORD: TOKENS.billing } },
  );
  const cpu = process.cpuUsage(cpu0);
  const tx = Number(/number of transactions actually processed: (\d+)/.exec(r.stdout)?.[1] ?? 0);
  process.stdout.write(
    r.stdout
      .split('\n')
      .filter((l) => /tps|latency/.test(l))
      .join('\n') + '\n',
  );
  // CPU per transaction is steadier than TPS on a shared 2-core machine.
  process.stdout.write(
    `gateway CPU per transaction: ${((cpu.user + cpu.system) / tx).toFixed(1)} µs (user ${(cpu.user / tx).toFixed(1)}, system ${(cpu.system / tx).toFixed(1)}), ${tx} transactions\n`,
  );
  await tg.stop();
  await db.drop();
  rmSync(dir, { recursive: true, force: true });
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
