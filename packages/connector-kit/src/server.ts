/**
 * The listener side every connector shares: bind, track the callers' sockets, and stop in
 * one way — stop accepting, let open sessions finish for up to `drainMs`, then end the rest
 * (each ends its Session, so the audit trail is complete) and wait, bounded, for their last
 * audit events. Event-driven: no polling.
 */
import type { Server, Socket } from 'node:net';
import { listenOn, type Logger } from '@gatehouse/core';

/** After the drain, how long the sessions that were cut off get to write their last events. */
const SESSION_END_GRACE_MS = 2_000;

export interface StopHooks {
  /** Ask idle connections to go (e.g. node:http's closeIdleConnections); called at once and after each close. */
  nudgeIdle?: () => void;
  /** End what is still open once the drain time is up (each ends its Session). */
  endSessions?: () => void;
}

export class ConnectorServer {
  private readonly sockets = new Set<Socket>();
  /** Work that must finish before stop() returns: session ends and their audit events. */
  private readonly pending = new Set<Promise<unknown>>();
  private onEmpty: (() => void) | null = null;
  private stopping = false;

  constructor(
    readonly server: Server,
    private readonly log: Logger,
  ) {
    server.on('connection', (s: Socket) => this.adopt(s));
    server.on('error', (e) => log.error({ err: e.message }, 'listener error'));
  }

  /** Open caller connections (for /metrics and drain). */
  get connections(): number {
    return this.sockets.size;
  }

  /** Bind; resolves with the bound `host:port`. */
  listen(address: string): Promise<string> {
    return listenOn(this.server, address);
  }

  /** Keep `p` (a session ending, an audit write) in view until it settles; stop() waits for it. */
  track(p: Promise<unknown>): void {
    const q: Promise<unknown> = p
      .catch(() => undefined)
      .finally(() => {
        this.pending.delete(q);
        this.checkEmpty();
      });
    this.pending.add(q);
  }

  async stop(drainMs: number, hooks: StopHooks = {}): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    hooks.nudgeIdle?.();
    this.nudge = hooks.nudgeIdle ?? null;
    if (!this.idle()) {
      const drained = new Promise<void>((resolve) => (this.onEmpty = resolve));
      await raceTimeout(drained, drainMs);
      if (!this.idle()) {
        this.log.info({ open: this.sockets.size }, 'drain time is up; ending the remaining sessions');
        hooks.endSessions?.();
        for (const s of this.sockets) s.destroy();
        await raceTimeout(new Promise<void>((resolve) => (this.onEmpty = resolve)), SESSION_END_GRACE_MS);
      }
    }
    this.onEmpty = null;
    await closed;
  }

  private nudge: (() => void) | null = null;

  private adopt(s: Socket): void {
    this.sockets.add(s);
    s.once('close', () => {
      this.sockets.delete(s);
      if (this.stopping) this.nudge?.();
      this.checkEmpty();
    });
  }

  private idle(): boolean {
    return this.sockets.size === 0 && this.pending.size === 0;
  }

  private checkEmpty(): void {
    if (this.onEmpty && this.idle()) {
      const f = this.onEmpty;
      this.onEmpty = null;
      f();
    }
  }
}

function raceTimeout(p: Promise<void>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    t.unref();
    void p.then(() => {
      clearTimeout(t);
      resolve();
    });
  });
}
