/**
 * The `type: postgres` connector: a TCP listener speaking the PostgreSQL protocol to
 * callers and to one upstream server. One instance per configured connector.
 */
import { readFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { createSecureContext } from 'node:tls';
import { listenOn, type Connector, type ConnectorContext, type ConnectorFactory, type PostgresConnectorConfig } from '@gatehouse/core';
import { CancelKeys } from './cancel-keys.js';
import { Catalog } from './catalog.js';
import { handleClient } from './client-connection.js';
import { loadTls } from './dev-cert.js';
import type { Relay } from './relay.js';
import type { UpstreamTarget } from './upstream.js';

export const createPostgresConnector: ConnectorFactory<PostgresConnectorConfig> = (ctx) => new PostgresConnector(ctx);

class PostgresConnector implements Connector {
  readonly name: string;
  readonly type = 'postgres';
  private server: Server | null = null;
  /** Every open caller socket, and the relay once it has one. */
  private readonly sockets = new Set<Socket>();
  private readonly relays = new Set<Relay>();
  private readonly cancelKeys = new CancelKeys();
  private idle: (() => void) | null = null;

  constructor(private readonly ctx: ConnectorContext<PostgresConnectorConfig>) {
    this.name = ctx.config.name;
  }

  get connections(): number {
    return this.sockets.size;
  }

  async start(): Promise<string> {
    const cfg = this.ctx.config;
    const log = this.ctx.logger;
    const tls = await loadTls(cfg.tls, this.ctx.dataDir, cfg.name);
    if (tls.development) log.warn('postgres connector uses a self-signed development TLS certificate; configure tls.cert and tls.key');
    const secureContext = createSecureContext({ cert: tls.cert, key: tls.key });
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
    const server = createServer({ noDelay: true, pauseOnConnect: true }, (socket) => {
      this.sockets.add(socket);
      socket.once('close', () => {
        this.sockets.delete(socket);
        this.checkIdle();
      });
      void handleClient(socket, {
        config: cfg,
        secureContext,
        upstream,
        byGroup,
        catalog,
        cancelKeys: this.cancelKeys,
        log,
        openSession: this.ctx.openSession,
        onRelay: (r) => this.relays.add(r),
        onClose: (r) => {
          if (r) this.relays.delete(r);
          this.checkIdle();
        },
      });
    });
    this.server = server;
    const bound = await listenOn(server, cfg.listen);
    server.on('error', (e) => log.error({ err: e.message }, 'postgres listener error'));
    log.info({ listen: bound, upstream: cfg.upstream.address }, 'postgres connector listening');
    return bound;
  }

  async stop(drainMs: number): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    if (this.sockets.size > 0 || this.relays.size > 0) {
      const drained = new Promise<void>((resolve) => {
        this.idle = resolve;
      });
      const timer = new Promise<void>((resolve) => setTimeout(resolve, drainMs).unref());
      await Promise.race([drained, timer]);
      // Whoever is left is cut off; each relay ends its Session so the audit trail is complete.
      const ending = [...this.relays].map(
        (r) =>
          new Promise<void>((resolve) => {
            r.close('gateway shutdown');
            resolve();
          }),
      );
      for (const s of this.sockets) s.destroy();
      await Promise.all(ending);
      if (this.relays.size > 0 || this.sockets.size > 0) {
        await Promise.race([new Promise<void>((resolve) => (this.idle = resolve)), new Promise((r) => setTimeout(r, 2000).unref())]);
      }
    }
    await closed;
  }

  private checkIdle(): void {
    if (this.idle && this.sockets.size === 0 && this.relays.size === 0) {
      const f = this.idle;
      this.idle = null;
      f();
    }
  }
}
