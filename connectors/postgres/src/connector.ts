/**
 * The `type: postgres` connector: a TCP listener speaking the PostgreSQL protocol to
 * callers and to one upstream server. One instance per configured connector.
 */
import { readFile } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { ConnectorServer, loadTls, ServerTls } from '@gatehouse/connector-kit';
import { type Connector, type ConnectorContext, type ConnectorFactory } from '@gatehouse/core';
import type { PostgresConnectorConfig } from './config.js';
import { CancelKeys, type CancelRouting } from './cancel-keys.js';
import { Catalog } from './catalog.js';
import { handleClient } from './client-connection.js';
import type { Relay } from './relay.js';
import { sendCancel, type UpstreamTarget } from './upstream.js';

export const createPostgresConnector: ConnectorFactory<PostgresConnectorConfig> = (ctx) => new PostgresConnector(ctx);

/** The factory for a connection worker: cancel keys carry the worker's index (see cancel-keys.ts). */
export const routedPostgresConnector =
  (routing: CancelRouting): ConnectorFactory<PostgresConnectorConfig> =>
  (ctx) =>
    new PostgresConnector(ctx, routing);

class PostgresConnector implements Connector {
  readonly name: string;
  readonly type = 'postgres';
  private listener: ConnectorServer | null = null;
  /** Sessions that reached the relay: ended by stop() when the drain time is up. */
  private readonly relays = new Set<Relay>();
  private readonly cancelKeys: CancelKeys;

  constructor(
    private readonly ctx: ConnectorContext<PostgresConnectorConfig>,
    private readonly routing: CancelRouting | null = null,
  ) {
    this.name = ctx.config.name;
    this.cancelKeys = new CancelKeys(routing?.index ?? null);
  }

  get connections(): number {
    return this.listener?.connections ?? 0;
  }

  async start(): Promise<string> {
    const cfg = this.ctx.config;
    const log = this.ctx.logger;
    const tls = await loadTls(cfg.tls, { dataDir: this.ctx.dataDir, connector: cfg.name, development: true });
    if (tls.development) log.warn('postgres connector uses a self-signed development TLS certificate; configure tls.cert and tls.key');
    // The caller-side handshake; with tls.client_auth it requires a certificate from tls.ca.
    const clientTls = new ServerTls(tls, { handshakeTimeoutMs: cfg.startup_timeout, alpn: ['postgresql'] });
    const upstream: UpstreamTarget = {
      address: cfg.upstream.address,
      database: cfg.upstream.database,
      user: cfg.upstream.user,
      password: cfg.upstream.password,
      sslmode: cfg.upstream.sslmode,
      ca: cfg.upstream.ca ? await readFile(cfg.upstream.ca) : undefined,
      scramCache: new Map(),
    };
    // Each by_group login is its own target (its own SCRAM cache: the salt is per role).
    const byGroup = cfg.upstream.by_group.map((g) => ({ groups: g.groups, target: { ...upstream, user: g.user, password: g.password, scramCache: new Map() } }));
    // Read with the connector's own credential: it must see every relation a caller can.
    const catalog = new Catalog(upstream, cfg.startup_timeout, log);
    // A CancelRequest is answered by nobody (as PostgreSQL does); one for a key another
    // worker issued goes to that worker, which checks the secret.
    const cancel = async (pid: number, secret: number) => {
      const owner = this.cancelKeys.foreignOwner(pid);
      if (owner !== null && this.routing) return this.routing.forward(cfg.name, owner, pid, secret);
      const key = this.cancelKeys.lookup(pid, secret);
      if (key) await sendCancel(upstream, key.pid, key.secret, cfg.startup_timeout);
    };
    this.routing?.serve(cfg.name, cancel);
    const server = createServer({ noDelay: true, pauseOnConnect: true });
    const listener = new ConnectorServer(server, log);
    server.on('connection', (socket: Socket) => {
      // One tracked promise per caller, settled when its session has ended.
      listener.track(
        new Promise<void>((ended) => {
          void handleClient(socket, {
            config: cfg,
            tls: clientTls,
            upstream,
            byGroup,
            catalog,
            cancelKeys: this.cancelKeys,
            cancel,
            log,
            openSession: (peer) => this.ctx.openSession(peer),
            onRelay: (r) => this.relays.add(r),
            onClose: (r) => {
              if (r) this.relays.delete(r);
              ended();
            },
          });
        }),
      );
    });
    this.listener = listener;
    const bound = await listener.listen(cfg.listen);
    log.info({ listen: bound, upstream: cfg.upstream.address }, 'postgres connector listening');
    return bound;
  }

  async stop(drainMs: number): Promise<void> {
    await this.listener?.stop(drainMs, { endSessions: () => [...this.relays].forEach((r) => r.close('gateway shutdown')) });
  }
}
