/**
 * MySQL side by side: direct to the local MariaDB, a bare Node relay, Gatehouse passthrough
 * and full; sysbench `oltp_point_select` (prepared statements), 8 threads. There is no C
 * peer here (ProxySQL and MaxScale are not Debian packages).
 */
import { TOKENS } from '../../lib/gateway.js';
import { createTestDb, type TestDb } from '../../e2e/mysql/my-env.js';
import type { BenchConfig } from '../lib/config.js';
import { auditYaml, startGatehouse, type Mode } from '../lib/gatehouse.js';
import { measureTargets, type TargetResult, type TargetSpec } from '../lib/measure.js';
import { startRelay } from '../lib/relay.js';
import { sysbench, sysbenchPrepare, type MyEndpoint } from '../lib/sysbench.js';

function mysqlConnector(db: TestDb, mode: Mode): string {
  const full = mode === 'full';
  return [
    '  - name: my',
    '    type: mysql',
    '    listen: 127.0.0.1:0',
    `    upstream: { address: 127.0.0.1:3306, database: ${db.database}, user: ${db.user}, password: "\${env:MY_PASSWORD}", tls: { mode: disable } }`,
    '    allow: [ { groups: [payments] } ]',
    // Point selects return column c: full mode masks it (and scans every value for card numbers).
    ...(full
      ? [
          '    rules:',
          '      - { name: no-ddl, match: { statement: [drop, truncate] }, action: deny }',
          '    masking:',
          '      - { columns: [c], with: last4 }',
          '      - { detectors: [credit_card], with: last4 }',
        ]
      : []),
  ].join('\n');
}

function gatehouseMy(db: TestDb, mode: Mode): TargetSpec<MyEndpoint> {
  return {
    target: `gatehouse-${mode}`,
    kind: 'gatehouse',
    async start() {
      const gw = await startGatehouse({ connectors: mysqlConnector(db, mode), audit: auditYaml(mode), env: { MY_PASSWORD: db.password } });
      const { host, port } = gw.address('my');
      return { pid: gw.pid, endpoint: { host, port, user: 'app', password: TOKENS.billing, database: db.database }, stop: () => gw.stop() };
    },
  };
}

export async function mysqlSuite(cfg: BenchConfig, log: (s: string) => void): Promise<TargetResult[]> {
  const db = await createTestDb('bench');
  try {
    const direct: MyEndpoint = { host: '127.0.0.1', port: 3306, user: db.user, password: db.password, database: db.database };
    await sysbenchPrepare(direct);
    const targets: TargetSpec<MyEndpoint>[] = [
      { target: 'direct', kind: 'direct', start: () => Promise.resolve({ pid: null, endpoint: direct, stop: () => Promise.resolve() }) },
      {
        target: 'relay',
        kind: 'relay',
        async start() {
          const r = await startRelay(3306);
          return { pid: r.pid, endpoint: { ...direct, port: r.port }, stop: () => r.stop() };
        },
      },
      gatehouseMy(db, 'passthrough'),
      gatehouseMy(db, 'full'),
    ];
    const threads = cfg.mysql.threads;
    return await measureTargets(
      {
        protocol: 'mysql',
        unit: 'query',
        offeredRate: cfg.mysql.rate,
        warmUp: !cfg.warmSeconds ? undefined : (e) => sysbench(e, { threads, seconds: cfg.warmSeconds }),
        fixed: (e) => sysbench(e, { threads, seconds: cfg.seconds, rate: cfg.mysql.rate }),
        saturate: (e) => sysbench(e, { threads, seconds: cfg.seconds }),
      },
      targets,
      log,
    );
  } finally {
    await db.drop().catch(() => {});
  }
}
