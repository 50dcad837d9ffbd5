/**
 * The `type: mysql` connector: a TCP listener speaking the MySQL / MariaDB client/server
 * protocol to callers and to one upstream server. One instance per configured connector.
 */
import { generateKeyPair } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { promisify } from 'node:util';
import { ConnectorServer, loadTls, ServerTls } from '@gatehouse/connector-kit';
import type { Connector, ConnectorContext, ConnectorFactory } from '@gatehouse/core';
import { Catalog } from './catalog.js';
import { handleClient } from './client-connection.js';
import type { MysqlConnectorConfig } from './config.js';
import type { Relay } from './relay.js';
import type { CallerKeys } from './startup.js';
import type { UpstreamTarget } from './upstream.js';

const generate = promisify(generateKeyPair);

export const createMysqlConnector: ConnectorFactory<MysqlConnectorConfig> = (ctx) => new MysqlConnector(ctx);

/** Announced before the first upstream login tells the real version. */
const DEFAULT_SERVER_VERSION = '8.0.36-gatehouse';

class MysqlConnector implements Connector {
  readonly name: string;
  readonly type = 'mysql';
  private listener: ConnectorServer | null = null;
  private readonly relays = new Set<Relay>();
  private serverVersion = DEFAULT_SERVER_VERSION;
  private nextConnectionId = 1;

  constructor(private readonly ctx: ConnectorContext<MysqlConnectorConfig>) {
    this.name = ctx.config.name;
  }

  get connections(): number {
    return this.listener?.connections ?? 0;
  }

  async start(): Promise<string> {
    const cfg = this.ctx.config;
    const log = this.ctx.logger;
    const material = await loadTls(cfg.tls, { dataDir: this.ctx.dataDir, connector: cfg.name, development: true });
    if (material.development) log.warn('mysql connector uses a self-signed development TLS certificate; configure tls.cert and tls.key');
    const tls = new ServerTls(material, { handshakeTimeoutMs: cfg.startup_timeout });
    // For caching_sha2_password without TLS (loopback only): the caller encrypts its token with this key.
    const pair = await generate('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
    const keys: CallerKeys = { publicKey: pair.publicKey, privateKey: pair.privateKey };
    const up = cfg.upstream;
    const ca = up.tls.ca ? await readFile(up.tls.ca) : undefined;
    const upstream: UpstreamTarget = { address: up.address, database: up.database, user: up.user, password: up.password ?? '', tls: { mode: up.tls.mode, ...(ca ? { ca } : {}) } };
    const byGroup = up.by_group.map((g) => ({ groups: g.groups, target: { ...upstream, user: g.user, password: g.password ?? '' } }));
    const catalog = new Catalog(upstream, cfg.startup_timeout, log);
    const server = createServer({ noDelay: true, pauseOnConnect: true });
    const listener = new ConnectorServer(server, log);
    server.on('connection', (socket: Socket) => {
      listener.track(
        new Promise<void>((ended) => {
          void handleClient(socket, {
            config: cfg,
            tls,
            keys,
            upstream,
            byGroup,
            catalog,
            log,
            serverVersion: () => this.serverVersion,
            onServerVersion: (v) => (this.serverVersion = v),
            connectionId: () => {
              const id = this.nextConnectionId;
              this.nextConnectionId = (this.nextConnectionId % 0x7fffffff) + 1;
              return id;
            },
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
    log.info({ listen: bound, upstream: up.address }, 'mysql connector listening');
    return bound;
  }

  async stop(drainMs: number): Promise<void> {
    await this.listener?.stop(drainMs, { endSessions: () => [...this.relays].forEach((r) => r.close('gateway shutdown')) });
  }
}
