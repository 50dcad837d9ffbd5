/**
 * A caller's `session` channel: its requests (pty, env, window changes, signals, and one of
 * shell / exec / subsystem), judged, then relayed to a channel of the same kind on the
 * target. Shells and execs are recorded as asciicast; scp and sftp transfers are followed
 * file by file; one unit is recorded when the channel ends (exit status, bytes, the
 * recording's SHA-256), before the exit status reaches the caller.
 */
import { join } from 'node:path';
import { denialMessage, type Decision, type Unit, type UnitRecord } from '@gatehouse/core';
import { AsciicastWriter, asciicastName, type AsciicastSummary } from '@gatehouse/recording';
import type { ClientChannel, PseudoTtyInfo, ServerChannel, Session as SshSessionChannel } from 'ssh2';
import { certExtension, type CallerConnection, type Closable } from './connection.js';
import { Pipe, type Handler } from './relay.js';
import { ScpStream, type ScpFile, type ScpRequest } from './scp.js';
import { SftpFramer, SftpTracker, type SftpFileReport, type SftpOperation, type SftpOpReport } from './sftp.js';
import { execUnits, scpFileUnit, sftpUnit, shellUnit, subsystemUnit, type Channel } from './units.js';

/** Environment variables passed to the target (as OpenSSH's default AcceptEnv). */
const ENV_ALLOWED = /^(LANG|LC_[A-Z_]+|TZ|COLORTERM)$/;
const MAX_ENV = 32;

type Kind = 'shell' | 'exec' | 'subsystem';

interface Exit {
  code: number | null;
  signal?: string;
  dump?: boolean;
  desc?: string;
}

export class SessionChannel implements Closable {
  private pty: PseudoTtyInfo | null = null;
  private readonly env: Record<string, string> = {};
  private readonly refusedEnv: string[] = [];
  private started = false;
  private up: ClientChannel | null = null;
  private ch: ServerChannel | null = null;
  private cast: AsciicastWriter | null = null;
  private finishing: Promise<void> | null = null;
  /** The request being judged and opened (abort waits for it). */
  private starting: Promise<void> | null = null;
  /** A window change that came before the target's channel was open. */
  private pendingWindow: { cols: number; rows: number; width: number; height: number } | null = null;
  /** How the target's command ended (exit status or signal), once it said. */
  private exit: Exit | null = null;
  /** The caller closed the channel (possibly while its request was being judged). */
  private callerClosed = false;
  /** Aborted when the caller closes the channel: a request held for approval is cancelled. */
  private readonly held = new AbortController();
  private readonly n: number;

  constructor(
    private readonly conn: CallerConnection,
    private readonly session: SshSessionChannel,
  ) {
    this.n = conn.nextChannel();
    conn.track(this);
    session.on('pty', (accept, reject, info) => {
      const id = conn.session.identity;
      if (this.started || (id?.issuer === 'ssh-cert' && !certExtension(id.claims, 'permit-pty'))) return reject?.();
      this.pty = info;
      accept?.();
    });
    session.on('env', (accept, reject, info) => {
      if (!this.started && ENV_ALLOWED.test(info.key) && Object.keys(this.env).length < MAX_ENV && info.val.length <= 1024) {
        this.env[info.key] = info.val;
        accept?.();
      } else {
        if (this.refusedEnv.length < MAX_ENV) this.refusedEnv.push(String(info.key).slice(0, 64));
        reject?.();
      }
    });
    session.on('window-change', (accept, _reject, info) => {
      if (this.pty) Object.assign(this.pty, { cols: info.cols, rows: info.rows, width: info.width, height: info.height });
      // Before the target's channel is open, the latest size is kept and sent once it is.
      if (this.up) this.up.setWindow(info.rows, info.cols, info.height, info.width);
      else this.pendingWindow = info;
      this.cast?.resize(info.cols, info.rows);
      accept?.();
    });
    session.on('signal', (accept, reject, info) => {
      if (!this.up) return reject?.();
      this.up.signal(info.name);
      accept?.();
    });
    session.on('x11', (_accept, reject) => {
      reject?.();
      void conn.refused('x11', 'x11-req', 'x11-forwarding', 'X11 forwarding is not supported by the gateway');
    });
    session.on('auth-agent', (_accept, reject) => {
      reject?.();
      void conn.refused('auth-agent', 'auth-agent-req@openssh.com', 'agent-forwarding', 'agent forwarding is not supported by the gateway');
    });
    session.on('shell', (accept, reject) => {
      this.starting = this.start('shell', '', accept, reject).catch((e: Error) => this.fail(e));
    });
    session.on('exec', (accept, reject, info) => {
      this.starting = this.start('exec', info.command, accept, reject).catch((e: Error) => this.fail(e));
    });
    session.on('subsystem', (accept, reject, info) => {
      this.starting = this.start('subsystem', info.name, accept, reject).catch((e: Error) => this.fail(e));
    });
    session.on('close', () => {
      this.callerClosed = true;
      this.held.abort();
      if (!this.started) conn.untrack(this);
      else void this.finish({ aborted: 'caller closed the channel' });
    });
  }

  private fail(e: Error): void {
    this.conn.log.error({ err: e.message, stack: e.stack }, 'ssh channel failed');
    void this.finish({ aborted: `internal error: ${e.message}` });
  }

  /**
   * Accept the request at once — a client sends its stdin (and EOF) right behind it, and
   * ssh2 drops channel data that arrives before the accept — holding what the caller sends
   * (paused: the SSH window closes) while the request is judged and the same is opened on
   * the target. A refusal is then an exit status with the reason on stderr.
   */
  private async start(kind: Kind, arg: string, accept: () => ServerChannel, reject: () => void): Promise<void> {
    const conn = this.conn;
    if (this.started || conn.closed) return reject();
    this.started = true;
    const ch = accept();
    if (!ch) return; // the caller closed the channel meanwhile
    ch.pause();
    this.ch = ch;
    const startedAt = Date.now();
    const identity = conn.session.identity!;
    // A certificate's force-command replaces whatever the caller asked for (OpenSSH semantics).
    const forced = typeof identity.claims.force_command === 'string' ? identity.claims.force_command : null;
    const requested = kind === 'exec' ? arg : kind === 'subsystem' ? `subsystem ${arg}` : 'shell';
    let execKind: Kind = kind;
    let line = arg;
    if (forced !== null) {
      execKind = 'exec';
      line = forced;
    }
    let channel: Channel;
    let outer: Unit;
    let units: Unit[];
    let scp: ScpRequest | null = null;
    let sftp = false;
    if (execKind === 'exec') {
      const e = execUnits(line);
      ({ channel, outer, units, scp } = e);
      sftp = e.sftpServer;
    } else if (execKind === 'shell') {
      outer = shellUnit(this.pty?.term ?? null);
      units = [outer];
      channel = 'shell';
    } else {
      outer = subsystemUnit(arg);
      units = [outer];
      channel = outer.match.channel as Channel;
      sftp = arg === 'sftp';
    }
    // Held for approval: the caller reads why it waits on stderr (once; the SSH connection keeps itself alive).
    const j = await conn.session.judge(units, null, {
      signal: this.held.signal,
      onHold: (n) => {
        if (n.first) ch.stderr.write(`gatehouse: waiting for approval of request ${n.id} (up to ${Math.ceil(n.remainingMs / 1000)}s)\r\n`);
      },
    });
    const attributes: Record<string, unknown> = {
      channel_id: this.n,
      ...(this.pty ? { pty: { term: this.pty.term, cols: this.pty.cols, rows: this.pty.rows } } : {}),
      ...(Object.keys(this.env).length ? { env: Object.keys(this.env) } : {}),
      ...(this.refusedEnv.length ? { env_refused: this.refusedEnv } : {}),
      ...(forced !== null ? { forced_command: forced, requested } : {}),
    };
    if (j.deny) {
      await this.refuse(ch, outer, j.deny, startedAt, attributes, 126);
      return;
    }
    const decision = j.decisions[0];
    const up = await conn.upstream();
    if (!up.ok) {
      await this.refuse(ch, outer, decision, startedAt, attributes, 255, up.error.message);
      conn.upstreamFailed();
      return;
    }
    const upCh = await new Promise<ClientChannel | Error>((resolve) => {
      const cb = (e: Error | undefined, c: ClientChannel) => {
        // Listen at once: ssh2 may parse the command's whole life (data, exit, EOF) in the
        // same tick as the open confirmation, before the code after this await runs. Data
        // waits in the stream; the exit status would be lost.
        if (!e) {
          c.on('exit', (code: number | null, signal?: string, dump?: boolean, desc?: string) => {
            // ssh2 reports `SIGKILL`; the protocol (and the audit) name signals without the prefix.
            this.exit = code !== null && code !== undefined ? { code } : { code: null, signal: signal?.replace(/^SIG/, ''), dump, desc };
          });
        }
        resolve(e ?? c);
      };
      const pty = this.pty ? { rows: this.pty.rows, cols: this.pty.cols, height: this.pty.height, width: this.pty.width, term: this.pty.term, modes: this.pty.modes } : undefined;
      if (execKind === 'shell') up.client.shell(pty ?? false, { env: this.env }, cb);
      else if (execKind === 'exec') up.client.exec(line, { env: this.env, ...(pty ? { pty } : {}) }, cb);
      else up.client.subsys(arg, cb);
    });
    if (upCh instanceof Error) {
      await this.refuse(ch, outer, decision, startedAt, attributes, 255, `the target refused the ${execKind}: ${upCh.message}`);
      return;
    }
    if (conn.closed || this.callerClosed) {
      // Judged and opened, but the connection went away first: nothing ran; say so.
      upCh.close();
      ch.close();
      await conn.recordOrClose({ unit: outer, decision, startedAt, result: { status: 'aborted', error: 'closed before the command started' }, attributes });
      conn.untrack(this);
      return;
    }
    this.up = upCh;
    if (this.pendingWindow) {
      const w = this.pendingWindow;
      upCh.setWindow(w.rows, w.cols, w.height, w.width);
    }
    const recorded = channel === 'exec' || channel === 'shell';
    if (recorded) this.cast = this.openCast(channel, execKind === 'shell' ? 'shell' : line);
    this.relay(ch, upCh, { channel, outer, decision, startedAt, attributes, scp, sftp });
  }

  private openCast(channel: Channel, command: string): AsciicastWriter {
    const conn = this.conn;
    const identity = conn.session.identity!;
    const masker = conn.session.masker;
    return new AsciicastWriter({
      path: join(conn.recordingsDir, asciicastName(conn.session.id, this.n)),
      header: {
        width: this.pty?.cols || 80,
        height: this.pty?.rows || 24,
        title: channel === 'shell' ? `shell (${identity.subject})` : command,
        env: { TERM: this.pty?.term ?? '', SHELL: '' },
        gatehouse: { session: conn.session.id, channel: this.n, kind: channel, command, subject: identity.subject, connector: conn.deps.config.name },
      },
      budget: conn.budget,
      mask: masker.active ? (t: string) => masker.maskText(t) : null,
      input: conn.deps.config.recording.input,
      logger: conn.log,
    });
  }

  /** A refused request: the caller reads why on stderr and gets `status`; the connection goes on. */
  private async refuse(ch: ServerChannel, unit: Unit, decision: Decision, startedAt: number, attributes: Record<string, unknown>, status: number, error?: string): Promise<void> {
    const conn = this.conn;
    const message = error ?? denialMessage(decision);
    await conn.recordOrClose({
      unit,
      decision,
      startedAt,
      result: { status, error: error ?? decision.reason ?? `denied by rule "${decision.rule}"` },
      attributes,
    });
    ch.stderr.write(`${message.startsWith('gatehouse: ') ? message : `gatehouse: ${message}`}\r\n`);
    ch.exit(status);
    ch.end();
    // Whatever the caller had sent is dropped (it was never read).
    ch.resume();
    conn.untrack(this);
  }

  private relay(
    ch: ServerChannel,
    up: ClientChannel,
    u: { channel: Channel; outer: Unit; decision: Decision; startedAt: number; attributes: Record<string, unknown>; scp: ScpRequest | null; sftp: boolean },
  ): void {
    const conn = this.conn;
    const touch = () => conn.touch();
    const transfers: Record<string, unknown>[] = [];
    let sftpTracker: SftpTracker | null = null;
    let stopReason: string | null = null;
    const stop = (why: string, bytesToCaller?: Buffer) => {
      stopReason ??= why;
      if (bytesToCaller) toCaller.inject(bytesToCaller);
      void this.finish({ aborted: why, status: 1 });
    };
    const onError = (e: Error) => this.fail(e);

    let toTargetHandler: Handler = (c) => {
      this.cast?.input(c);
      return [c];
    };
    let toCallerHandler: Handler = (c) => {
      this.cast?.output(c);
      return [c];
    };

    if (u.scp) {
      const req = u.scp;
      const judgeFile = (path: string, kind: 'file' | 'directory'): string | null => {
        const unit = scpFileUnit(req.direction, path, kind);
        const d = conn.session.decide(unit);
        if (d.action === 'allow') return null;
        const decision: Decision =
          // A file inside a running transfer cannot wait for a reviewer: refused, naming the rule.
          d.action === 'review' ? { action: 'deny', rule: d.rule, reason: `rule "${d.rule}" requires review; a file inside an scp transfer cannot be held for approval` } : d;
        void conn.recordOrClose({ unit, decision, startedAt: Date.now(), result: { status: 'refused', error: decision.reason }, attributes: { path, direction: req.direction } });
        return decision.reason ?? `denied by rule "${decision.rule}"`;
      };
      const onFile = (f: ScpFile) => {
        const unit = scpFileUnit(req.direction, f.path, 'file');
        const t = { path: f.path, name: f.name, direction: req.direction, size: f.size, bytes: f.bytes, sha256: f.sha256, complete: f.complete, mode: f.mode };
        transfers.push(t);
        void conn.recordOrClose({
          unit,
          decision: { action: 'allow' },
          startedAt: Date.now(),
          result: { status: f.complete ? 'ok' : 'incomplete', bytes: f.bytes },
          attributes: { transfer: t },
        });
      };
      const stream = new ScpStream(req, judgeFile, onFile);
      const scpHandler: Handler = (c) => {
        const v = stream.push(c);
        if (v.refused) stop(`scp: ${v.refused.path}: ${v.refused.reason}`, Buffer.from(`\x02gatehouse: ${v.refused.path}: ${v.refused.reason}\n`));
        else if (v.error) {
          void conn.session.protocolError(v.error, { code: 'ssh.scp', channel_id: this.n });
          stop(v.error);
        }
        return v.forward;
      };
      if (req.direction === 'upload') toTargetHandler = scpHandler;
      else toCallerHandler = scpHandler;
      up.once('close', () => stream.end());
    } else if (u.sftp) {
      const upFramer = new SftpFramer();
      const downFramer = new SftpFramer();
      const onFile = (f: SftpFileReport): Promise<unknown> => {
        const unit = sftpUnit(f.direction === 'upload' ? 'write' : 'read', [f.path], false);
        const t = {
          path: f.path,
          direction: f.direction,
          flags: f.flags,
          bytes_read: f.bytesRead,
          bytes_written: f.bytesWritten,
          sha256: f.sha256 ?? 'unavailable: not read or written in order',
          complete: f.complete,
        };
        transfers.push(t);
        return conn.recordOrClose({
          unit,
          decision: { action: 'allow' },
          startedAt: f.startedAt,
          result: { status: f.complete ? 'ok' : 'incomplete', bytes: f.bytesRead + f.bytesWritten },
          attributes: { transfer: t },
        });
      };
      const pendingRecords: Promise<unknown>[] = [];
      const onOp = (r: SftpOpReport) => {
        const unit = sftpUnit(r.op.op, r.op.paths, r.op.unresolved);
        pendingRecords.push(conn.recordOrClose({ unit, decision: { action: 'allow' }, startedAt: r.startedAt, result: { status: r.status === 0 ? 'ok' : `status ${r.status}` } }));
      };
      const tracker = new SftpTracker((f) => void pendingRecords.push(onFile(f)), onOp);
      const judgeOp = async (op: SftpOperation): Promise<Buffer | null> => {
        const unit = sftpUnit(op.op, op.paths, op.unresolved);
        const d = await conn.judgeOne(unit);
        if (d.action === 'allow') return null;
        await conn.recordOrClose({ unit, decision: d, startedAt: Date.now(), result: { status: 'refused', error: d.reason }, attributes: { paths: op.paths } });
        return tracker.refuse(op, `gatehouse: ${d.reason ?? `denied by rule "${d.rule}"`}`);
      };
      toTargetHandler = (c) => {
        const pkts = upFramer.push(c);
        if (upFramer.error) {
          void conn.session.protocolError(upFramer.error, { code: 'ssh.sftp', channel_id: this.n });
          stop(upFramer.error);
          return [];
        }
        const out: Buffer[] = [];
        let wait: Promise<void> | null = null;
        for (const p of pkts) {
          const op = tracker.request(p);
          if (tracker.error) {
            void conn.session.protocolError(tracker.error, { code: 'ssh.sftp', channel_id: this.n });
            stop(tracker.error);
            return out;
          }
          if (op === null && wait === null) {
            out.push(p);
            continue;
          }
          // From the first judged request on, keep order: judge, then forward or answer.
          const prev: Promise<void> = wait ?? Promise.resolve();
          wait = prev.then(async () => {
            if (op === null) return void out.push(p);
            const refusal = await judgeOp(op);
            if (refusal) toCaller.inject(refusal);
            else out.push(p);
          });
        }
        return wait ? wait.then(() => out) : out;
      };
      toCallerHandler = (c) => {
        const pkts = downFramer.push(c);
        if (downFramer.error) {
          void conn.session.protocolError(downFramer.error, { code: 'ssh.sftp', channel_id: this.n });
          stop(downFramer.error);
          return [];
        }
        for (const p of pkts) tracker.response(p);
        if (tracker.error) {
          void conn.session.protocolError(tracker.error, { code: 'ssh.sftp', channel_id: this.n });
          stop(tracker.error);
          return [];
        }
        // A file's audit event is durable before its CLOSE reply reaches the caller.
        if (pendingRecords.length === 0) return pkts;
        const all = pendingRecords.splice(0);
        return Promise.all(all).then(() => pkts);
      };
      up.once('close', () => tracker.end());
      sftpTracker = tracker;
    }

    const toTarget = new Pipe(ch, up, toTargetHandler, onError, touch);
    const toCaller = new Pipe(up, ch, toCallerHandler, onError, touch);
    const errToCaller = new Pipe(
      up.stderr,
      ch.stderr,
      (c) => {
        this.cast?.output(c);
        return [c];
      },
      onError,
      touch,
    );
    ch.on('end', () => up.end());

    let upClosed = false;
    let stderrEnded = false;
    const maybeDone = () => {
      if (upClosed && stderrEnded) void this.finish({});
    };
    up.stderr.once('end', () => {
      stderrEnded = true;
      maybeDone();
    });
    up.once('close', () => {
      upClosed = true;
      // stderr normally ends with the channel; do not wait on it for long.
      setTimeout(() => {
        stderrEnded = true;
        maybeDone();
      }, 2000).unref();
      maybeDone();
    });

    this.finishWith = async ({ aborted, status }) => {
      toTarget.stop();
      const reason = aborted ?? stopReason;
      // Everything the target said is out to the caller before the exit status.
      // (Briefly when the channel is being aborted: the caller may already be gone.)
      await Promise.race([Promise.all([toCaller.flushed(), errToCaller.flushed()]), delay(reason ? 250 : 5000)]);
      toCaller.stop();
      errToCaller.stop();
      const recording: AsciicastSummary | null = this.cast ? await this.cast.close() : null;
      if (sftpTracker) {
        sftpTracker.end();
        u.attributes.sftp = { bytes_to_target: sftpTracker.bytesUp, bytes_to_caller: sftpTracker.bytesDown };
      }
      const ex = this.exit;
      const unitRecord: UnitRecord = {
        unit: u.outer,
        decision: u.decision,
        startedAt: u.startedAt,
        result: {
          status: ex ? (ex.code ?? `signal ${ex.signal}`) : reason ? 'aborted' : 'closed',
          bytes: toCaller.bytes + errToCaller.bytes,
          ...(reason ? { error: reason } : ex?.signal ? { error: `killed by signal ${ex.signal}${ex.desc ? `: ${ex.desc}` : ''}` } : {}),
        },
        attributes: {
          ...u.attributes,
          bytes_in: toTarget.bytes,
          bytes_out: toCaller.bytes,
          bytes_err: errToCaller.bytes,
          ...(ex ? { exit: ex.code !== null ? { code: ex.code } : { signal: ex.signal, core_dumped: ex.dump ?? false } } : {}),
          ...(transfers.length ? { transfers: transfers.length } : {}),
          ...(recording ? { recording } : {}),
        },
      };
      await conn.recordOrClose(unitRecord);
      // Only now does the caller learn how it ended (strict audit: the event is on disk first).
      try {
        if (ex && ex.code !== null) ch.exit(ex.code);
        else if (ex?.signal) ch.exit(ex.signal, ex.dump ?? false, ex.desc ?? '');
        else if (status !== undefined) ch.exit(status);
        ch.end();
        ch.close();
      } catch {
        /* the caller is gone */
      }
      up.close();
    };
  }

  private finishWith: ((o: { aborted?: string; status?: number }) => Promise<void>) | null = null;

  private finish(o: { aborted?: string; status?: number }): Promise<void> {
    this.finishing ??= (async () => {
      try {
        if (this.finishWith) await this.finishWith(o);
      } finally {
        this.conn.untrack(this);
      }
    })();
    return this.finishing;
  }

  async abort(reason: string): Promise<void> {
    // A request still being judged or opened settles first (bounded), so that its unit
    // lands before the session's end.
    if (this.started && !this.finishWith && this.starting) await Promise.race([this.starting, delay(2000)]);
    if (!this.started || !this.finishWith) {
      this.conn.untrack(this);
      try {
        if (this.ch) this.ch.close();
        else this.session.close?.();
      } catch {
        /* gone */
      }
      return;
    }
    if (this.up && !this.finishing) {
      this.ch?.stderr.write(`\r\ngatehouse: ${reason}\r\n`);
    }
    await this.finish({ aborted: reason, status: 255 });
  }
}

const delay = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());
