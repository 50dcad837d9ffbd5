/**
 * One caller's SSH connection: login through the Session (token as password, bound key,
 * OpenSSH certificate), the gateway's own login to the target, and every channel the caller
 * opens — judged, relayed with back-pressure, recorded and audited. Agent and X11
 * forwarding, remote forwarding and Unix-socket forwarding are refused (and audited).
 */
import { join } from 'node:path';
import type { Logger, PeerInfo, Result, Session, SshSignature, Unit, Decision } from '@gatehouse/core';
import { Deadline } from '@gatehouse/connector-kit';
import { RecordingBudget } from '@gatehouse/recording';
import type { AuthContext, ClientInfo, Connection, Session as SshSessionChannel, TcpipRequestInfo, Client as SshClient, ServerChannel, ClientChannel } from 'ssh2';
import type { SshConnectorConfig } from './config.js';
import type { FailureLimiter } from './rate-limit.js';
import { connectUpstream, type UpstreamFailure, type UpstreamTarget } from './upstream.js';
import { SessionChannel } from './session-channel.js';
import { forwardUnit } from './units.js';
import { Pipe } from './relay.js';

export interface ConnectionDeps {
  config: SshConnectorConfig;
  dataDir: string;
  log: Logger;
  openSession(peer: PeerInfo): Session;
  upstream: UpstreamTarget;
  limiter: FailureLimiter;
  recordingBytes: number;
}

/** Login attempts (signed keys, passwords) one connection may make, as OpenSSH's MaxAuthTries. */
const MAX_ATTEMPTS = 6;

/** Something open on the connection that must be finished (recorded) before the session ends. */
export interface Closable {
  abort(reason: string): Promise<void>;
}

export class CallerConnection {
  readonly session: Session;
  readonly peer: PeerInfo;
  readonly budget: RecordingBudget;
  readonly recordingsDir: string;
  private upstream_: Promise<{ ok: true; client: SshClient } | { ok: false; error: UpstreamFailure }> | null = null;
  private upstreamClient: SshClient | null = null;
  private readonly open = new Set<Closable>();
  private channelCount = 0;
  private attempts = 0;
  private closing: Promise<void> | null = null;
  private readonly loginDeadline: Deadline;
  private idleTimer: NodeJS.Timeout | null = null;
  private lastActivity = Date.now();
  readonly log: Logger;

  constructor(
    private readonly client: Connection,
    info: ClientInfo,
    readonly deps: ConnectionDeps,
    private readonly onClosed: () => void,
  ) {
    this.peer = {
      address: info.ip,
      port: info.port,
      tls: false,
      meta: { client: info.header.versions.software, transport: 'ssh' },
    };
    this.session = deps.openSession(this.peer);
    this.log = deps.log.child({ session: this.session.id });
    this.budget = new RecordingBudget(deps.recordingBytes);
    this.recordingsDir = join(deps.dataDir, 'recordings');
    this.loginDeadline = new Deadline(deps.config.login_timeout, () => {
      void this.session.protocolError('login timed out', { code: 'ssh.login_timeout' });
      this.close('login timed out');
    });
    client.on('authentication', (ctx: AuthContext) => void this.authenticate(ctx).catch((e: Error) => this.internalError(e)));
    client.on('ready', () => this.ready());
    client.on('session', (accept, reject) => this.sessionChannel(accept, reject));
    client.on('tcpip', (accept, reject, info: TcpipRequestInfo) => void this.forward(accept, reject, info).catch((e: Error) => this.internalError(e)));
    client.on('openssh.streamlocal', (_accept: unknown, reject: () => void, info: { socketPath: string }) => {
      reject();
      void this.refused('direct-streamlocal', `direct-streamlocal ${info.socketPath}`, 'unix-socket-forwarding', 'forwarding to Unix sockets is not supported by the gateway');
    });
    client.on(
      'request',
      (accept: ((port?: number) => void) | undefined, reject: (() => void) | undefined, name: string, info: { bindAddr?: string; bindPort?: number; socketPath?: string }) => {
        reject?.();
        if (name === 'tcpip-forward' || name === 'streamlocal-forward@openssh.com') {
          const what = name === 'tcpip-forward' ? `tcpip-forward ${info.bindAddr}:${info.bindPort}` : `streamlocal-forward ${info.socketPath}`;
          void this.refused('remote-forward', what, 'remote-forwarding', 'remote (reverse) port forwarding is not supported by the gateway');
        }
      },
    );
    client.on('error', (e: Error) => this.log.debug({ err: e.message }, 'caller connection error'));
    client.on('close', () => this.close('client closed'));
    client.on('end', () => this.close('client closed'));
  }

  get closed(): boolean {
    return this.closing !== null;
  }

  // ---- login ---------------------------------------------------------------------------

  private async authenticate(ctx: AuthContext): Promise<void> {
    const address = this.peer.address;
    if (this.closing) return ctx.reject();
    if (this.session.identity) return ctx.reject();
    if (this.deps.limiter.blocked(address)) {
      ctx.reject();
      this.close('too many failed logins from this address');
      return;
    }
    this.peer.claimedUser = ctx.username;
    const methods: ('publickey' | 'password')[] = ['publickey', 'password'];
    if (ctx.method === 'password') {
      if (++this.attempts > MAX_ATTEMPTS) return this.tooManyAttempts(ctx);
      this.peer.meta = { ...this.peer.meta, auth: 'password' };
      const r = await this.session.authenticate(ctx.password);
      return this.settle(ctx, r, methods);
    }
    if (ctx.method === 'publickey') {
      const certificate = ctx.key.algo.includes('-cert-v01@openssh.com');
      const signed = ctx.signature !== undefined && ctx.blob !== undefined;
      if (signed && ++this.attempts > MAX_ATTEMPTS) return this.tooManyAttempts(ctx);
      const signature: SshSignature | null = !signed
        ? null
        : certificate
          ? { wire: ctx.signature! }
          : { algorithm: ctx.key.algo, bytes: ctx.signature!, ...(ctx.hashAlgo ? { hash: ctx.hashAlgo } : {}) };
      // A certificate query is answered yes: the caller then signs, and the certificate is
      // checked (and a refusal audited, with its reason) on the signed request. A plain key
      // query is answered truthfully and not audited: agents offer every key they hold.
      if (!signed && certificate) return ctx.accept();
      this.peer.meta = { ...this.peer.meta, auth: certificate ? 'certificate' : 'publickey' };
      const r = await this.session.authenticateSshKey({
        algo: ctx.key.algo,
        blob: ctx.key.data,
        proof: signature ? { data: ctx.blob!, signature } : null,
        address,
      });
      // A query ("would you take this key?") is answered without counting or auditing.
      if (!signed) return r.ok ? ctx.accept() : ctx.reject(methods);
      return this.settle(ctx, r, methods);
    }
    // none, keyboard-interactive, hostbased: tell the caller what works.
    ctx.reject(methods);
  }

  private settle(ctx: AuthContext, r: Result<unknown>, methods: ('publickey' | 'password')[]): void {
    if (this.closing) return ctx.reject();
    if (r.ok) {
      ctx.accept();
      return;
    }
    if (r.error.code === 'audit.unavailable') {
      ctx.reject();
      this.close('audit log unavailable');
      return;
    }
    if (this.deps.limiter.fail(this.peer.address)) {
      void this.session.protocolError('too many failed logins from this address; refusing it for a while', {
        code: 'ssh.rate_limited',
        max: this.deps.config.max_auth_failures,
        windowMs: this.deps.config.auth_failure_window,
      });
    }
    ctx.reject(methods);
  }

  private tooManyAttempts(ctx: AuthContext): void {
    ctx.reject();
    void this.session.protocolError('too many login attempts on one connection', { code: 'ssh.max_auth_tries', max: MAX_ATTEMPTS });
    this.close('too many login attempts');
  }

  private ready(): void {
    this.loginDeadline.clear();
    this.upstream_ = this.connectUpstream();
    this.touch();
    const idleMs = this.deps.config.idle_timeout;
    if (idleMs > 0) {
      this.idleTimer = setInterval(
        () => {
          if (Date.now() - this.lastActivity >= idleMs) this.close('idle timeout');
        },
        Math.min(idleMs, 30_000),
      );
      this.idleTimer.unref();
    }
  }

  private async connectUpstream(): Promise<{ ok: true; client: SshClient } | { ok: false; error: UpstreamFailure }> {
    const r = await connectUpstream(this.deps.upstream);
    if (!r.ok) {
      await this.session.protocolError(r.error.message, {
        code: r.error.code,
        upstream: this.deps.upstream.address,
        ...(r.error.presented ? { presentedKey: r.error.presented } : {}),
      });
      this.log.warn({ code: r.error.code, upstream: this.deps.upstream.address }, r.error.message);
      return r;
    }
    if (r.tofu) {
      await this.session.protocolError('target host key trusted on first use and pinned', {
        code: 'upstream.host_key_pinned',
        upstream: this.deps.upstream.address,
        fingerprint: r.tofu.fingerprint,
      });
    }
    if (this.closing) {
      r.client.end();
      return { ok: false, error: { code: 'upstream.error', message: 'connection closed' } };
    }
    this.upstreamClient = r.client;
    r.client.on('error', (e: Error) => this.log.debug({ err: e.message }, 'upstream connection error'));
    r.client.on('close', () => this.close('upstream closed'));
    return { ok: true, client: r.client };
  }

  /** The target connection, once logged in; the failure (with its message for the caller) otherwise. */
  upstream(): Promise<{ ok: true; client: SshClient } | { ok: false; error: UpstreamFailure }> {
    return this.upstream_ ?? Promise.resolve({ ok: false, error: { code: 'upstream.error', message: 'not logged in' } });
  }

  /** The target could not be reached: nothing more can happen on this connection. */
  upstreamFailed(): void {
    setTimeout(() => this.close('upstream unavailable'), 100).unref();
  }

  touch(): void {
    this.lastActivity = Date.now();
  }

  // ---- channels ------------------------------------------------------------------------

  /** A new channel may open (bounded per connection). */
  private admit(): boolean {
    return !this.closing && this.open.size < this.deps.config.max_channels;
  }

  nextChannel(): number {
    return ++this.channelCount;
  }

  track(c: Closable): void {
    this.open.add(c);
  }

  untrack(c: Closable): void {
    this.open.delete(c);
  }

  private sessionChannel(accept: () => SshSessionChannel, reject: () => void): void {
    if (!this.admit()) return reject();
    const ch = accept();
    new SessionChannel(this, ch);
  }

  /** `ssh -L`: judged; off unless a rule allows it by name (the default allow does not). */
  private async forward(accept: () => ServerChannel, reject: () => void, info: TcpipRequestInfo): Promise<void> {
    if (!this.admit()) return reject();
    const startedAt = Date.now();
    const unit = forwardUnit(info.destIP, info.destPort, { host: info.srcIP, port: info.srcPort });
    let decision = await this.judgeOne(unit, true);
    const identity = this.session.identity;
    if (decision.action === 'allow' && identity?.issuer === 'ssh-cert' && !certExtension(identity.claims, 'permit-port-forwarding')) {
      decision = { action: 'deny', rule: 'certificate', reason: "the caller's certificate does not permit port forwarding" };
    }
    if (decision.action !== 'allow') {
      reject();
      await this.recordOrClose({ unit, decision, startedAt, result: { status: 'refused', error: decision.reason } });
      return;
    }
    const up = await this.upstream();
    if (!up.ok) {
      reject();
      await this.recordOrClose({ unit, decision, startedAt, result: { status: 'error', error: up.error.message } });
      this.upstreamFailed();
      return;
    }
    const upCh = await new Promise<ClientChannel | Error>((resolve) => up.client.forwardOut(info.srcIP, info.srcPort, info.destIP, info.destPort, (e, c) => resolve(e ?? c)));
    if (upCh instanceof Error) {
      reject();
      await this.recordOrClose({ unit, decision, startedAt, result: { status: 'error', error: `the target could not connect: ${upCh.message}` } });
      return;
    }
    if (this.closing) {
      upCh.close();
      return reject();
    }
    const ch = accept();
    const n = this.nextChannel();
    let done: Promise<void> | null = null;
    const onError = (e: Error) => {
      this.log.warn({ err: e.message }, 'forwarding relay failed');
      ch.close();
      upCh.close();
    };
    const toTarget = new Pipe(
      ch,
      upCh,
      (c) => [c],
      onError,
      () => this.touch(),
    );
    const toCaller = new Pipe(
      upCh,
      ch,
      (c) => [c],
      onError,
      () => this.touch(),
    );
    ch.on('end', () => upCh.end());
    upCh.on('end', () => ch.end());
    const finish = (reason: string | null): Promise<void> => {
      done ??= (async () => {
        toTarget.stop();
        toCaller.stop();
        ch.close();
        upCh.close();
        this.untrack(closable);
        await this.recordOrClose({
          unit,
          decision,
          startedAt,
          result: { status: reason ? 'aborted' : 'closed', bytes: toCaller.bytes, ...(reason ? { error: reason } : {}) },
          attributes: { channel_id: n, bytes_to_target: toTarget.bytes, bytes_to_caller: toCaller.bytes },
        });
      })();
      return done;
    };
    const closable: Closable = { abort: (reason) => finish(reason) };
    this.track(closable);
    let closedSides = 0;
    const onClose = () => {
      if (++closedSides === 2) void finish(null);
      else setTimeout(() => void finish(null), 1000).unref();
    };
    ch.once('close', onClose);
    upCh.once('close', onClose);
  }

  /**
   * Judge one unit. `explicit`: the default allow does not count — a rule must allow it by
   * name (port forwarding). A `review` is settled by the Session (held or refused per `review.mode`).
   */
  async judgeOne(unit: Unit, explicit = false): Promise<Decision> {
    const j = await this.session.judge([unit]);
    const d = j.deny ?? j.decisions[0];
    if (explicit && d.action === 'allow' && d.rule === undefined) {
      return { action: 'deny', rule: 'forwarding-off', reason: 'port forwarding is off unless a rule allows it (match: { channel: [direct-tcpip] }, action: allow)' };
    }
    return d;
  }

  /** Record a unit; a failed audit write closes the connection (fail closed). */
  async recordOrClose(r: Parameters<Session['record']>[0]): Promise<boolean> {
    const res = await this.session.record(r);
    if (!res.ok) {
      this.log.error({ code: res.error.code }, 'audit write failed; closing the connection');
      this.close('audit log unavailable');
      return false;
    }
    return true;
  }

  /** A request refused by the gateway whatever the rules say (agent, X11, remote forwarding). */
  async refused(channel: string, text: string, rule: string, reason: string): Promise<void> {
    if (!this.session.identity) return;
    await this.recordOrClose({
      unit: { type: 'command', text, match: { channel }, context: { text, channel } },
      decision: { action: 'deny', rule, reason },
      startedAt: Date.now(),
      result: { status: 'refused', error: reason },
    });
  }

  private internalError(e: Error): void {
    this.log.error({ err: e.message, stack: e.stack }, 'ssh connector internal error');
    void this.session.protocolError(`internal error: ${e.message}`, { code: 'ssh.internal' });
    this.close('internal error');
  }

  // ---- end -----------------------------------------------------------------------------

  /** Close everything (idempotent): each open channel records its unit, then session.end. */
  close(reason: string): void {
    void this.closeAndWait(reason);
  }

  /** `close`, resolving once the session has ended (its last audit events written). */
  closeAndWait(reason: string): Promise<void> {
    this.closing ??= (async () => {
      this.loginDeadline.clear();
      if (this.idleTimer) clearInterval(this.idleTimer);
      await Promise.all([...this.open].map((c) => c.abort(reason).catch((e: Error) => this.log.error({ err: e.message }, 'channel close failed'))));
      // ssh2 queues its disconnect behind an unfinished key exchange (a caller that stalls
      // before login): the socket itself is destroyed a second later at the latest.
      const sock = (this.client as unknown as { _sock?: { destroy(): void } })._sock;
      try {
        this.client.end();
      } catch {
        /* already gone */
      }
      if (sock) setTimeout(() => sock.destroy(), 1000).unref();
      this.upstreamClient?.end();
      // A target login still in flight is ended when it completes (see connectUpstream).
      await this.session.end(reason);
      this.onClosed();
    })();
    return this.closing;
  }
}

/** An OpenSSH certificate extension the identity was issued with (`permit-pty`, …). */
export function certExtension(claims: Record<string, unknown>, name: string): boolean {
  const ext = claims.extensions;
  return Array.isArray(ext) && ext.includes(name);
}
