/**
 * The gateway as a primary with connection workers (`workers:` above 1). The primary owns
 * what must stay single: the audit log (its writer thread, the store, the signing key), the
 * admin server and the console, and the approvals service the admin API serves. Workers
 * run the connectors and their Sessions (worker.ts). Files made once are made before any
 * worker is forked: masking.key and the audit signing key here, and what a connector makes
 * on its first start by the first worker, started alone (pool.ts).
 */
import { mkdirSync } from 'node:fs';
import type { GatehouseConfig, Logger } from '@gatehouse/core';
import { createAuthenticator } from '@gatehouse/identity';
import { openApprovals, type ApprovalService } from '@gatehouse/approvals';
import { openGatewayAudit, StartupError, type Gateway } from '../gateway.js';
import { createLogger } from '../logger.js';
import { createMetrics } from '../metrics.js';
import { startAdminServer, type AdminServer } from '../admin.js';
import { openSessionDirectory, type SharedSessionDirectory } from '../session-directory.js';
import { loadOrCreateSecret } from '../secrets.js';
import { WorkerPool } from './pool.js';
import { splitWindow } from './audit-sink.js';

export interface ClusterOptions {
  /** How many connection workers (the resolved `workers:`). */
  workers: number;
  /** Overrides `log.level` from the config. */
  logLevel?: string;
  logger?: Logger;
}

export async function startCluster(config: GatehouseConfig, opts: ClusterOptions): Promise<Gateway> {
  const logLevel = opts.logLevel ?? config.log.level;
  const logger = opts.logger ?? createLogger(logLevel);
  mkdirSync(config.data_dir, { recursive: true, mode: 0o700 });
  // Every worker masks with the same hash key: created here, read there.
  loadOrCreateSecret(config.data_dir, 'masking.key');
  // Opening the log creates the signing key when missing; only the primary ever signs.
  // batched: the workers gather for part of the window, the log gets the rest.
  const audit = await openGatewayAudit(config, logger, config.audit.durability === 'batched' ? splitWindow(config.audit.window_ms).logMs : config.audit.window_ms);
  const authenticator = createAuthenticator(config.identity, { logger: logger.child({ component: 'identity' }) });
  const metrics = createMetrics(audit);
  const pool = new WorkerPool({ config, count: opts.workers, audit, logger: logger.child({ component: 'workers' }), logLevel });
  let admin: AdminServer | null = null;
  let approvals: ApprovalService | null = null;
  let directory: SharedSessionDirectory | null = null;

  const teardown = async (drainMs: number) => {
    await admin?.close();
    // Workers first: their last events (session ends of the drained connections) must reach
    // the log before it is flushed and signed.
    await pool.stop(drainMs);
    await approvals?.close().catch((e: Error) => logger.error({ err: e.message }, 'approvals close failed'));
    await directory?.close();
    authenticator.close();
    await audit.close();
  };

  try {
    // The admin API's approvals (the shared store: the config refuses SQLite with reviews here).
    approvals = await openApprovals(config, { audit, logger });
    if (config.approvals?.store === 'postgres') directory = await openSessionDirectory(config.approvals.postgres_url!, config.gateway_id, logger);
    await pool.start();
    admin = await startAdminServer({ config, audit, authenticator, metrics, logger: logger.child({ component: 'admin' }), connectors: [], approvals, directory, workers: pool });
  } catch (e) {
    await teardown(0);
    throw e instanceof StartupError ? e : new StartupError((e as Error).message);
  }

  let stopping: Promise<void> | null = null;
  return {
    config,
    addresses: pool.addresses,
    admin: admin.address,
    adminUrl: `${admin.tls ? 'https' : 'http'}://${admin.address}`,
    audit,
    verifierKey: audit.verifierKey,
    logger,
    approvals,
    workers: () => pool.list(),
    stop: (drainMs = 10_000) => (stopping ??= teardown(drainMs)),
  };
}
