/**
 * A connection worker: one process of `workers: N`, forked by the primary (primary.ts). It
 * serves connections on the listen sockets node:cluster shares, runs their Sessions (policy,
 * masking, recording: everything per connection stays in this process), and sends its audit
 * events to the primary, which owns the one audit log. It stops when the primary says so
 * (draining its connections first) and fails closed the moment the primary is gone.
 */
import type { Connector, ConnectorModule, Logger } from '@gatehouse/core';
import { postgresConnectorRouted, type CancelRouting } from '@gatehouse/connector-postgres';
import { createAuthenticator } from '@gatehouse/identity';
import { createRecorder } from '@gatehouse/recording';
import { openApprovals, type ApprovalService } from '@gatehouse/approvals';
import { compileConnectors, startConnectors } from '../gateway.js';
import { connectorModules } from '../connectors.js';
import { createLogger } from '../logger.js';
import { createMetrics } from '../metrics.js';
import { openSessionDirectory, type SharedSessionDirectory } from '../session-directory.js';
import { IpcAuditSink, splitWindow } from './audit-sink.js';
import { isToWorker, type FromWorker, type ToWorker } from './messages.js';

/** After the drain, how long the last audit events of the ended sessions may take to be acknowledged. */
const SINK_CLOSE_MS = 10_000;

type Start = Extract<ToWorker, { t: 'start' }>;

/** A message that could not be written: the channel is closing, which 'disconnect' reports. */
const ignoreSendError = (): void => {};

export async function runWorker(): Promise<void> {
  const send = process.send?.bind(process);
  if (!send) throw new Error('a connection worker must be forked by the gateway (no IPC channel)');
  // The primary coordinates every stop: a terminal's Ctrl-C reaches the whole process group,
  // and a worker that quit on it would cut its connections before the drain. A file-size
  // limit must reach the writer as an error, not kill a worker (cli.ts does the same).
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGXFSZ'] as const) process.on(sig, () => {});
  // Once the primary is gone, a send would be an 'error' event nobody handles: drop it (the
  // disconnect handler fails the sink and stops the worker).
  const post = (m: FromWorker) => process.connected && send(m, undefined, {}, ignoreSendError);
  const start = await new Promise<Start>((resolve) => {
    const onMessage = (m: unknown) => {
      if (isToWorker(m) && m.t === 'start') {
        process.off('message', onMessage);
        resolve(m);
      }
    };
    process.on('message', onMessage);
    post({ t: 'hello' });
  });
  const logger = createLogger(start.logLevel).child({ worker: start.index });
  try {
    await serve(start, post, logger);
  } catch (e) {
    logger.error({ err: (e as Error).message }, 'connection worker could not start');
    post({ t: 'start-failed', message: (e as Error).message });
    process.disconnect();
    process.exitCode = 1;
  }
}

async function serve(start: Start, post: (m: FromWorker) => boolean, logger: Logger): Promise<void> {
  const { config, index } = start;
  const audit = new IpcAuditSink({
    durability: config.audit.durability,
    gatherMs: splitWindow(config.audit.window_ms).workerMs,
    send: post,
    logger: logger.child({ component: 'audit' }),
  });
  const cancels = new Map<string, (pid: number, secret: number) => Promise<void>>();
  const routing: CancelRouting = {
    index,
    forward: (connector, owner, pid, secret) => void post({ t: 'cancel', connector, owner, pid, secret }),
    serve: (connector, cancel) => void cancels.set(connector, cancel),
  };
  const modules: ConnectorModule[] = connectorModules.map((m) => (m.type === 'postgres' ? (postgresConnectorRouted(routing) as unknown as ConnectorModule) : m));
  const ready = await compileConnectors(config, modules);
  const authenticator = createAuthenticator(config.identity, { logger: logger.child({ component: 'identity' }) });
  const metrics = createMetrics(null);
  const recorder = createRecorder({ dataDir: config.data_dir, logger: logger.child({ component: 'recording' }) });
  const connectors: Connector[] = [];
  let approvals: ApprovalService | null = null;
  let directory: SharedSessionDirectory | null = null;

  let stopping: Promise<void> | null = null;
  const stop = (drainMs: number) =>
    (stopping ??= (async () => {
      await Promise.all(connectors.map((c) => c.stop(drainMs).catch((e: Error) => logger.error({ err: e.message, connector: c.name }, 'stop failed'))));
      await approvals?.close().catch((e: Error) => logger.error({ err: e.message }, 'approvals close failed'));
      await directory?.close();
      authenticator.close();
      if (!(await audit.close(SINK_CLOSE_MS))) logger.error('the primary did not acknowledge the last audit events before the worker stopped');
    })());

  process.on('message', (m: unknown) => {
    if (!isToWorker(m)) return;
    switch (m.t) {
      case 'acked':
        return audit.acked(m.id, m.seqs, m.refused);
      case 'received':
        return audit.received(m.upTo);
      case 'audit-failed':
        return audit.fail(m.message);
      case 'cancel':
        return void cancels
          .get(m.connector)?.(m.pid, m.secret)
          .catch((e: Error) => logger.warn({ err: e.message }, 'forwarded cancel failed'));
      case 'report':
        return void post({
          t: 'report',
          req: m.req,
          report: { connections: Object.fromEntries(connectors.map((c) => [c.name, c.connections])), failure: audit.failure?.message ?? null },
        });
      case 'metrics':
        return void metrics.registry.getMetricsAsJSON().then((json) => post({ t: 'metrics', req: m.req, metrics: json }));
      case 'stop':
        return void stop(m.drainMs).then(() => {
          post({ t: 'stopped' });
          process.disconnect();
        });
    }
  });
  // The primary is gone (killed, crashed): nothing can be audited any more. Refuse, cut the
  // connections (their units could not be recorded) and go.
  process.once('disconnect', () => {
    if (stopping) return;
    audit.fail('the primary process is gone');
    void stop(0).finally(() => process.exit(1));
  });

  try {
    // Before any listener: a shared store that cannot be reached stops the start.
    approvals = await openApprovals(config, { audit, logger });
    if (config.approvals?.store === 'postgres') directory = await openSessionDirectory(config.approvals.postgres_url!, config.gateway_id, logger);
    const addresses = await startConnectors(config, ready, { audit, authenticator, recorder, metrics, logger, approvals, directory }, connectors);
    post({ t: 'listening', addresses: [...addresses] });
  } catch (e) {
    await stop(0);
    throw e;
  }
}
