/**
 * PostgreSQL side by side: direct, bare Node relay, pgbouncer, Gatehouse passthrough and
 * full, with pgbench `-S -M prepared` (one statement per transaction), 8 clients.
 */
import { postgresConnector, dbUpstream, type DbOwner } from '../../lib/postgres.js';
import { TOKENS } from '../../lib/gateway.js';
import { createTestDb, type TestDb } from '../../e2e/postgres/pg-env.js';
import type { BenchConfig } from '../lib/config.js';
import { auditYaml, startGatehouse, type Mode } from '../lib/gatehouse.js';
import { measureTargets, type TargetResult, type TargetSpec } from '../lib/measure.js';
import { pgbench, type PgEndpoint } from '../lib/pgbench.js';
import { startPgbouncer } from '../lib/pgbouncer.js';
import { run } from '../lib/proc.js';
import { startRelay } from '../lib/relay.js';

/** The rules and masking of `full` mode (masking applies to the caller: svc:billing is not exempt). */
export const PG_FULL_RULES = [
  '{ name: no-ddl, match: { statement: [drop, truncate, alter] }, action: deny }',
  '{ name: bulk-write, match: { statement: [delete, update], where: absent }, action: review }',
];
export const PG_FULL_MASKING = ['{ columns: [card_number, filler], with: last4 }', '{ detectors: [credit_card, email], with: redact }'];

/** `password: false` for a cluster that trusts local logins; `pgPort` for a cluster of the benchmark's own. */
export function pgConnectorYaml(db: DbOwner, mode: Mode, o: { pgPort?: number; password?: boolean } = {}): string {
  const full = mode === 'full';
  const upstream = dbUpstream(db, 'disable', { password: o.password ?? true }).replace('127.0.0.1:5432', `127.0.0.1:${o.pgPort ?? 5432}`);
  return postgresConnector({ upstream, rules: full ? PG_FULL_RULES : [], masking: full ? PG_FULL_MASKING : [] });
}

export function gatehousePgTarget(db: TestDb, mode: Mode, database: string): TargetSpec<PgEndpoint> {
  return {
    target: `gatehouse-${mode}`,
    kind: 'gatehouse',
    async start() {
      const gw = await startGatehouse({ connectors: pgConnectorYaml(db, mode), audit: auditYaml(mode), env: { PG_PASSWORD: db.password } });
      const { host, port } = gw.address('pg');
      return { pid: gw.pid, endpoint: { host, port, user: 'bench', password: TOKENS.billing, database }, stop: () => gw.stop() };
    },
  };
}

export async function pgInit(db: TestDb, scale: number, port = 5432): Promise<void> {
  await run('pgbench', ['-i', '-q', '-s', String(scale), '-h', '127.0.0.1', '-p', String(port), '-U', db.role, db.database], {
    env: { ...process.env, PGPASSWORD: db.password },
    timeout: 600_000,
  });
}

export async function postgresSuite(cfg: BenchConfig, log: (s: string) => void): Promise<TargetResult[]> {
  const db = await createTestDb('bench');
  try {
    await pgInit(db, cfg.pg.scale);
    const direct: PgEndpoint = { host: '127.0.0.1', port: 5432, user: db.role, password: db.password, database: db.database };
    const via = (port: number, password = db.password): PgEndpoint => ({ ...direct, port, password });
    const targets: TargetSpec<PgEndpoint>[] = [
      { target: 'direct', kind: 'direct', start: () => Promise.resolve({ pid: null, endpoint: direct, stop: () => Promise.resolve() }) },
      {
        target: 'relay',
        kind: 'relay',
        async start() {
          const r = await startRelay(5432);
          return { pid: r.pid, endpoint: via(r.port), stop: () => r.stop() };
        },
      },
      {
        target: 'pgbouncer',
        kind: 'peer',
        async start() {
          const b = await startPgbouncer(db);
          return { pid: b.pid, endpoint: via(b.port, ''), stop: () => b.stop() };
        },
      },
      gatehousePgTarget(db, 'passthrough', db.database),
      gatehousePgTarget(db, 'full', db.database),
    ];
    const clients = cfg.pg.clients;
    return await measureTargets(
      {
        protocol: 'postgres',
        unit: 'statement',
        offeredRate: cfg.pg.rate,
        warmUp: !cfg.warmSeconds ? undefined : (e) => pgbench(e, { clients, seconds: cfg.warmSeconds }),
        fixed: (e) => pgbench(e, { clients, seconds: cfg.seconds, rate: cfg.pg.rate }),
        saturate: (e) => pgbench(e, { clients, seconds: cfg.seconds }),
      },
      targets,
      log,
    );
  } finally {
    await db.drop().catch(() => {});
  }
}
