/**
 * One accepted caller: the connection phase (greeting, TLS, the token as password, or a
 * mapped client certificate with `tls.client_auth`), the gateway's own upstream login, then
 * the Relay. Everything before the Relay is bounded by `startup_timeout`; every refusal is
 * answered with an ERR packet, logged and audited.
 */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { Deadline, peerOf, type ServerTls } from '@gatehouse/connector-kit';
import { clientCertificateOf, isLoopback, type Identity, type Logger, type PeerInfo, type Result, type Session } from '@gatehouse/core';
import type { Catalog } from './catalog.js';
import type { MysqlConnectorConfig } from './config.js';
import { encode, okPayload } from './packet.js';
import { rsaDecryptPassword } from './protocol.js';
import { Relay } from './relay.js';
import { callerLogin, ERR, newScramble, refuseWith, type CallerKeys } from './startup.js';
import { connectUpstream, type UpstreamTarget } from './upstream.js';

export interface ClientDeps {
  config: MysqlConnectorConfig;
  tls: ServerTls;
  keys: CallerKeys;
  upstream: UpstreamTarget;
  byGroup: { groups: string[]; target: UpstreamTarget }[];
  catalog: Catalog;
  log: Logger;
  /** The version announced in the greeting (the upstream's, once known). */
  serverVersion(): string;
  onServerVersion(v: string): void;
  connectionId(): number;
  openSession(peer: PeerInfo): Session;
  onRelay(relay: Relay): void;
  onClose(relay: Relay | null): void;
  /** Tests: the address the caller appears to come from. */
  peerAddress?: string;
}

export async function handleClient(raw: Socket, d: ClientDeps): Promise<void> {
  const cfg = d.config;
  raw.setNoDelay(true);
  const peer: PeerInfo = peerOf(raw);
  if (d.peerAddress) peer.address = d.peerAddress;
  const session = d.openSession(peer);
  let socket: Socket = raw;
  const deadline = new Deadline(cfg.startup_timeout, () => {
    socket.destroy();
    raw.destroy();
  });
  let handedOver = false;
  raw.on('error', (e) => d.log.debug({ err: e.message }, 'client socket error'));
  try {
    const login = await callerLogin(raw, { tls: d.tls, keys: d.keys, serverVersion: d.serverVersion(), connectionId: d.connectionId(), loopback: isLoopback(peer.address) });
    socket = login.socket;
    if (login.tls) peer.tls = true;
    if (login.kind !== 'refused' || login.response) {
      const r = login.response;
      if (r) {
        peer.claimedUser = r.user;
        peer.meta = { database: r.database ?? null, program_name: r.attributes.get('program_name') ?? r.attributes.get('_client_name') ?? null };
      }
    }
    if (login.kind === 'refused') {
      const why = deadline.expired ? 'startup timeout' : login.error;
      if (!login.quiet || deadline.expired) await session.protocolError(why, { ...(login.meta ?? {}), stage: 'login' });
      return;
    }
    const r = login.response;
    const cert = d.tls.clientAuth && login.tls ? clientCertificateOf(login.socket as TLSSocket) : null;
    if (cert)
      peer.meta = { ...peer.meta, certificate: { ...(cert.subjectCN !== undefined ? { cn: cert.subjectCN } : {}), uris: cert.sanURIs, fingerprint256: cert.fingerprint256 } };
    let auth: Result<Identity> | null = null;
    let seq = login.seq;
    if (login.kind === 'certificate') {
      if (!cert) {
        refuseWith(socket, seq, ERR.ACCESS_DENIED, '28000', 'gatehouse: no verified client certificate');
        await session.protocolError('no verified client certificate');
        return;
      }
      const byCert = await session.authenticateCertificate(cert);
      if (byCert.ok || byCert.error.code === 'audit.unavailable') auth = byCert;
      else {
        // Not mapped (or not allowed here): a token as the password may still identify the caller.
        const asked = await login.askPassword();
        if (asked === null) return;
        seq = asked.seq;
        if (asked.token === '') {
          refuseWith(socket, seq, ERR.ACCESS_DENIED, '28000', `gatehouse: ${byCert.error.message}`);
          return;
        }
        auth = await session.authenticate(asked.token);
      }
    } else auth = await session.authenticate(login.token);
    if (!auth.ok) {
      refuseWith(socket, seq, ERR.ACCESS_DENIED, '28000', `gatehouse: ${auth.error.message}`);
      return;
    }
    const groups = auth.value.groups;
    const base = d.byGroup.find((g) => g.groups.some((x) => groups.includes(x)))?.target ?? d.upstream;
    const target: UpstreamTarget = { ...base, database: r.database || base.database };
    const up = await connectUpstream(target, { callerCapabilities: r.capabilities, charset: r.charset || 45, timeoutMs: cfg.startup_timeout });
    if (!up.ok) {
      d.log.warn({ err: up.error.message, code: up.error.code }, 'upstream login failed');
      refuseWith(socket, seq, up.error.code, up.error.sqlstate, `gatehouse: upstream login failed: ${up.error.message}`);
      await session.end(`upstream login failed: ${up.error.code} ${up.error.message}`);
      return;
    }
    d.onServerVersion(up.value.serverVersion);
    const leftover = login.reader.detach();
    if (deadline.expired || socket.destroyed || leftover.length > 0) {
      up.value.socket.destroy();
      if (leftover.length > 0) {
        await session.protocolError('data sent before the login was answered');
        refuseWith(socket, seq, ERR.HANDSHAKE, '08S01', 'gatehouse: data sent before the login was answered');
      }
      await session.end(deadline.expired ? 'startup timeout' : 'client closed');
      return;
    }
    deadline.clear();
    socket.write(encode(okPayload(up.value.status), seq));
    const relay: Relay = new Relay(socket, up.value.socket, session, {
      database: target.database,
      onParseError: cfg.on_parse_error,
      maxMessageBytes: cfg.max_message_bytes,
      maxResultMessageBytes: cfg.max_result_message_bytes,
      maxPrepared: cfg.max_prepared_statements,
      catalog: d.catalog,
      maskingMode: cfg.masking_mode,
      capabilities: up.value.capabilities,
      status: up.value.status,
      log: d.log.child({ session: session.id }),
      changeUser: {
        tls: login.tls,
        publicKey: d.keys.publicKey,
        scramble: newScramble,
        decrypt: (data, scramble) => (isLoopback(peer.address) ? rsaDecryptPassword(data, scramble, d.keys.privateKey) : null),
        authenticate: async (token, claimedUser) => {
          const next = d.openSession({ ...peer, claimedUser });
          const a = await next.authenticate(token);
          if (!a.ok) return { ok: false, code: ERR.ACCESS_DENIED, sqlstate: '28000', message: a.error.message };
          const t = d.byGroup.find((g) => g.groups.some((x) => a.value.groups.includes(x)))?.target ?? d.upstream;
          if (t.user !== base.user) await next.end('another upstream role');
          return { ok: true, session: next, sameUpstream: t.user === base.user };
        },
      },
      onClose: () => d.onClose(relay),
    });
    handedOver = true;
    d.onRelay(relay);
    relay.start();
  } catch (e) {
    d.log.error({ err: (e as Error).message }, 'client setup failed');
    socket.destroy();
  } finally {
    deadline.clear();
    if (!handedOver) {
      await session.end('closed during startup');
      d.onClose(null);
    }
  }
}
