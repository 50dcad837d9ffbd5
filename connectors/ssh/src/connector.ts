/**
 * The `type: ssh` connector: an SSH server for callers (the gateway's own host key), and per
 * caller an SSH client to one target with the connector's own key. One instance per
 * configured connector.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer, type Socket } from 'node:net';
import ssh2 from 'ssh2';
import { ConnectorServer } from '@gatehouse/connector-kit';
import type { Connector, ConnectorContext, ConnectorFactory } from '@gatehouse/core';
import type { SshConnectorConfig } from './config.js';
import { CallerConnection } from './connection.js';
import { loadHostKey, type HostKey } from './host-key.js';
import { KnownHosts } from './known-hosts.js';
import { FailureLimiter } from './rate-limit.js';
import { parseSize } from './schema.js';
import type { UpstreamTarget } from './upstream.js';

export const createSshConnector: ConnectorFactory<SshConnectorConfig> = (ctx) => new SshConnector(ctx);

/** Inline material (it has a line break or the given marker) or a path to a file. */
function material(value: string, marker: RegExp): string {
  return marker.test(value) || value.includes('\n') ? value : readFileSync(value, 'utf8');
}

export class SshConnector implements Connector {
  readonly name: string;
  readonly type = 'ssh';
  private listener: ConnectorServer | null = null;
  private readonly open = new Set<CallerConnection>();
  /** The host key callers pin (`ssh-ed25519 AAAA…`), known once started. */
  hostKey: HostKey | null = null;

  constructor(private readonly ctx: ConnectorContext<SshConnectorConfig>) {
    this.name = ctx.config.name;
  }

  get connections(): number {
    return this.listener?.connections ?? 0;
  }

  async start(): Promise<string> {
    const cfg = this.ctx.config;
    const log = this.ctx.logger;
    const hostKey = loadHostKey(cfg.host_key, this.ctx.dataDir);
    this.hostKey = hostKey;
    if (hostKey.created) log.warn({ path: hostKey.path, fingerprint: hostKey.fingerprint }, 'created the gateway SSH host key (kept in data_dir; callers pin it)');
    const knownHosts = new KnownHosts(cfg.upstream.known_hosts !== undefined ? material(cfg.upstream.known_hosts, /^\S+\s+(ssh-|ecdsa-|sk-)/m) : '');
    for (const why of knownHosts.ignored) log.warn({ reason: why }, 'upstream.known_hosts entry ignored');
    const upstream: UpstreamTarget = {
      address: cfg.upstream.address,
      user: cfg.upstream.user,
      ...(cfg.upstream.private_key !== undefined ? { privateKey: material(cfg.upstream.private_key, /PRIVATE KEY-----/) } : {}),
      ...(cfg.upstream.passphrase !== undefined ? { passphrase: cfg.upstream.passphrase } : {}),
      ...(cfg.upstream.password !== undefined ? { password: cfg.upstream.password } : {}),
      knownHosts,
      tofuFile: cfg.upstream.trust_on_first_use ? join(this.ctx.dataDir, 'ssh', `known_hosts.${cfg.name}`) : null,
      connectTimeoutMs: cfg.upstream.connect_timeout,
      keepaliveMs: cfg.keepalive_interval,
    };
    if (upstream.privateKey !== undefined) {
      const parsed = ssh2.utils.parseKey(upstream.privateKey, upstream.passphrase);
      if (parsed instanceof Error) throw new Error(`connector "${cfg.name}": upstream.private_key: ${parsed.message}`);
    }
    mkdirSync(join(this.ctx.dataDir, 'recordings'), { recursive: true, mode: 0o700 });
    const limiter = new FailureLimiter(cfg.max_auth_failures, cfg.auth_failure_window);
    const recordingBytes = parseSize(cfg.recording.max_bytes);
    const ssh = new ssh2.Server({
      hostKeys: [hostKey.private],
      ident: 'Gatehouse',
      keepaliveInterval: cfg.keepalive_interval > 0 ? cfg.keepalive_interval : 0,
      keepaliveCountMax: 3,
    });
    /** Sockets that have not sent an SSH identification yet, with their deadline. */
    const unclaimed = new WeakMap<Socket, NodeJS.Timeout>();
    ssh.on('connection', (client, info) => {
      // ssh2 reports a connection once its identification line arrived: from here the
      // connection's own login deadline (audited) applies.
      const sock = (client as unknown as { _sock?: Socket })._sock;
      if (sock) clearTimeout(unclaimed.get(sock));
      let ended!: () => void;
      this.listener?.track(new Promise<void>((r) => (ended = r)));
      const c = new CallerConnection(
        client,
        info,
        { config: cfg, dataDir: this.ctx.dataDir, log, openSession: (peer) => this.ctx.openSession(peer), upstream, limiter, recordingBytes },
        () => {
          this.open.delete(c);
          ended();
        },
      );
      this.open.add(c);
    });
    ssh.on('error', (e: Error) => log.error({ err: e.message }, 'ssh server error'));
    const server = createServer({ noDelay: true });
    const listener = new ConnectorServer(server, log);
    server.on('connection', (socket: Socket) => {
      // An address refused for failed logins costs no key exchange.
      if (limiter.blocked(socket.remoteAddress ?? '')) {
        socket.destroy();
        return;
      }
      socket.setKeepAlive(true, 60_000);
      // A connection that never even says it speaks SSH is dropped at the login deadline.
      const t = setTimeout(() => socket.destroy(), cfg.login_timeout);
      t.unref();
      unclaimed.set(socket, t);
      socket.once('close', () => clearTimeout(t));
      ssh.injectSocket(socket);
    });
    this.listener = listener;
    const bound = await listener.listen(cfg.listen);
    log.info({ listen: bound, upstream: cfg.upstream.address, hostKey: hostKey.public, fingerprint: hostKey.fingerprint }, 'ssh connector listening');
    return bound;
  }

  async stop(drainMs: number): Promise<void> {
    await this.listener?.stop(drainMs, { endSessions: () => [...this.open].forEach((c) => c.close('gateway shutdown')) });
  }
}
