/**
 * The gateway process, as a function: wires the audit log, identity, policy, masking and
 * recording into one Session factory per connector, starts the listeners and the admin
 * server, and tears it all down in order. Everything is compiled before any socket opens,
 * so a bad rule or expression stops the start instead of failing on the first caller.
 */
import { mkdirSync } from 'node:fs';
import {
  Session,
  type AuditSink,
  type Authenticator,
  type Connector,
  type ConnectorConfig,
  type ConnectorModule,
  type GatehouseConfig,
  type Logger,
  type MaskingEngine,
  type PolicyEngine,
  type Recorder,
  type SessionDirectory,
  type SessionMetrics,
  type SessionServices,
} from '@gatehouse/core';
import { openAuditLog, type AuditLog } from '@gatehouse/audit';
import { createAuthenticator } from '@gatehouse/identity';
import { compilePolicy } from '@gatehouse/policy';
import { compileMasking } from '@gatehouse/masking';
import { createRecorder } from '@gatehouse/recording';
import { openApprovals, reviewPolicy, type ApprovalService, type OpenApprovalsOptions } from '@gatehouse/approvals';
import { createLogger } from './logger.js';
import { createMetrics } from './metrics.js';
import { openSessionDirectory, type SharedSessionDirectory } from './session-directory.js';
import { startAdminServer } from './admin.js';
import { connectorModules } from './connectors.js';
import { loadOrCreateSecret } from './secrets.js';

export interface GatewayOptions {
  /** Overrides `log.level` from the config (`silent` for tests). */
  logLevel?: string;
  logger?: Logger;
  /**
   * Connector modules to start connectors with: the list the config was loaded with
   * (default: this build's, `connectorModules`).
   */
  connectors?: readonly ConnectorModule[];
  /** Approvals service timings (tests: faster polling and keep-alives). */
  approvals?: Pick<OpenApprovalsOptions, 'service'>;
}

export interface Gateway {
  config: GatehouseConfig;
  /** Connector name → bound host:port. */
  addresses: Map<string, string>;
  /** Admin server bound host:port. */
  admin: string;
  /** `https://host:port` when `admin.tls` is set, else `http://host:port`. */
  adminUrl: string;
  audit: AuditLog;
  /** Note verifier key of the audit checkpoints (`name+keyid+base64`). */
  verifierKey: string;
  logger: Logger;
  /** The approvals service (null when no connector has a review block and the store is not shared). */
  approvals: ApprovalService | null;
  /** With `workers:` above 1, the connection worker processes (index and pid); else absent. */
  workers?: () => readonly { index: number; pid: number }[];
  /** Stop accepting, drain connections for up to `drainMs`, flush and sign the audit log. */
  stop(drainMs?: number): Promise<void>;
}

export class StartupError extends Error {
  override name = 'StartupError';
}

/** One configured connector, its module, and its rules and masks compiled. */
export interface ReadyConnector {
  config: ConnectorConfig;
  module: ConnectorModule;
  policy: PolicyEngine;
  masking: MaskingEngine;
}

/**
 * Everything that can fail before a socket opens: each type's module prepared once (e.g. the
 * SQL parser), every rule and mask compiled (masking.key is created here when missing).
 */
export async function compileConnectors(config: GatehouseConfig, moduleList: readonly ConnectorModule[]): Promise<ReadyConnector[]> {
  const modules = new Map(moduleList.map((m) => [m.type, m]));
  const compiled = config.connectors.map((c) => {
    // The loader refuses unknown types; this guards a config loaded with other modules.
    const module = modules.get(c.type);
    if (!module) throw new StartupError(`connector "${c.name}": type ${c.type} is not available in this build`);
    return { config: c, module };
  });
  // Once per type in use, before anything is compiled against it (e.g. the SQL parser).
  for (const m of new Set(compiled.map((c) => c.module))) await m.prepare?.();
  const hashKey = loadOrCreateSecret(config.data_dir, 'masking.key');
  return compiled.map(({ config: c, module }) => {
    const policy = compilePolicy(c.rules, { connectorType: c.type });
    if (!policy.ok) throw new StartupError(`connector "${c.name}": ${policy.error.message}`);
    const masking = compileMasking(c.masking, { hashKey });
    if (!masking.ok) throw new StartupError(`connector "${c.name}": ${masking.error.message}`);
    return { config: c, module, policy: policy.value, masking: masking.value };
  });
}

/** The engines every connector's Sessions share (one set per process). */
export interface SharedServices {
  audit: AuditSink;
  authenticator: Authenticator;
  recorder: Recorder | null;
  metrics: SessionMetrics | null;
  logger: Logger;
  approvals: ApprovalService | null;
  directory: SessionDirectory | null;
}

/**
 * Create and start each connector with a Session factory over `shared`; every connector
 * created is pushed to `into` (so the caller can stop them if a later one fails). Resolves
 * with connector name → bound host:port.
 */
export async function startConnectors(config: GatehouseConfig, ready: readonly ReadyConnector[], shared: SharedServices, into: Connector[]): Promise<Map<string, string>> {
  const addresses = new Map<string, string>();
  for (const c of ready) {
    const services: SessionServices = {
      connector: { name: c.config.name, type: c.config.type },
      allow: c.config.allow,
      audit: shared.audit,
      authenticator: shared.authenticator,
      policy: c.policy,
      masking: c.masking,
      recorder: shared.recorder,
      metrics: shared.metrics,
      logger: shared.logger.child({ connector: c.config.name }),
      approvals: shared.approvals,
      review: c.config.review ? reviewPolicy(c.config.review) : null,
      directory: shared.directory,
    };
    const connector = c.module.create({
      config: c.config,
      dataDir: config.data_dir,
      logger: services.logger,
      openSession: (peer) => new Session(services, peer),
    });
    into.push(connector);
    addresses.set(c.config.name, await connector.start());
  }
  return addresses;
}

/**
 * The audit log as `audit:` configures it. `windowMs`: a cluster primary opens it with what
 * is left of `window_ms` after its workers' gathering (cluster/audit-sink.ts, splitWindow).
 */
export function openGatewayAudit(config: GatehouseConfig, logger: Logger, windowMs = config.audit.window_ms): Promise<AuditLog> {
  return openAuditLog({
    dataDir: config.data_dir,
    durability: config.audit.durability,
    windowMs,
    checkpointIntervalSec: config.audit.checkpoint_interval,
    origin: config.audit.origin,
    logger,
  });
}

export async function startGateway(config: GatehouseConfig, opts: GatewayOptions = {}): Promise<Gateway> {
  const logger = opts.logger ?? createLogger(opts.logLevel ?? config.log.level);
  mkdirSync(config.data_dir, { recursive: true, mode: 0o700 });

  const ready = await compileConnectors(config, opts.connectors ?? connectorModules);

  const audit = await openGatewayAudit(config, logger);
  const authenticator = createAuthenticator(config.identity, { logger: logger.child({ component: 'identity' }) });
  const metrics = createMetrics(audit);
  const recorder = createRecorder({ dataDir: config.data_dir, logger: logger.child({ component: 'recording' }) });

  const connectors: Connector[] = [];
  const addresses = new Map<string, string>();
  let admin: Awaited<ReturnType<typeof startAdminServer>> | null = null;
  let approvals: Awaited<ReturnType<typeof openApprovals>> = null;
  let directory: SharedSessionDirectory | null = null;

  const teardown = async (drainMs: number) => {
    await admin?.close();
    await Promise.all(connectors.map((c) => c.stop(drainMs).catch((e) => logger.error({ err: String(e), connector: c.name }, 'stop failed'))));
    // After the connectors: a unit still held was cancelled (and audited) as its session ended.
    await approvals?.close().catch((e: Error) => logger.error({ err: e.message }, 'approvals close failed'));
    await directory?.close();
    authenticator.close();
    await audit.close();
  };

  try {
    // Before any listener: a shared store that cannot be reached stops the start.
    approvals = await openApprovals(config, { audit, logger, ...opts.approvals });
    // The deployment's shared PostgreSQL also lists every gateway's sessions.
    if (config.approvals?.store === 'postgres') directory = await openSessionDirectory(config.approvals.postgres_url!, config.gateway_id, logger);
    const started = await startConnectors(config, ready, { audit, authenticator, recorder, metrics, logger, approvals, directory }, connectors);
    for (const [name, address] of started) addresses.set(name, address);
    admin = await startAdminServer({ config, audit, authenticator, metrics, logger: logger.child({ component: 'admin' }), connectors, approvals, directory });
  } catch (e) {
    await teardown(0);
    throw e instanceof StartupError ? e : new StartupError((e as Error).message);
  }

  let stopping: Promise<void> | null = null;
  return {
    config,
    addresses,
    admin: admin.address,
    adminUrl: `${admin.tls ? 'https' : 'http'}://${admin.address}`,
    audit,
    verifierKey: audit.verifierKey,
    logger,
    approvals,
    stop: (drainMs = 10_000) => (stopping ??= teardown(drainMs)),
  };
}
