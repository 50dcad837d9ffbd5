/**
 * The two-socket pump every framed-protocol connector runs once a caller is logged in:
 * bytes from each side are cut into frames, handed to the connector one at a time, and what
 * the connector queues for either side goes out in one write per batch.
 *
 * Back-pressure both ways: when a peer's send buffer is full we stop reading the other side
 * until it drains; when the connector must wait (a review, a strict audit append, a catalog
 * read) it returns a promise and we stop reading that side until it settles. So memory per
 * session is bounded by one read chunk plus what the connector holds per batch.
 *
 * Callback-driven on purpose: a promise exists only where the connector must wait.
 */
import type { Socket } from 'node:net';

/** Cuts one direction's byte stream into frames. */
export interface Framer<F> {
  push(chunk: Buffer): void;
  /** The next whole frame, or null until more bytes arrive (or after an error). */
  next(): F | null;
  /** Set once the stream is unusable (bad or oversized header); the pump stops reading it. */
  readonly error: unknown;
}

export type Side = 'client' | 'upstream';

/** What the connector does with each frame and each failure. */
export interface PumpHandlers<F> {
  /** One caller frame. A promise: read no more caller frames until it settles. */
  onClientFrame(frame: F): Promise<void> | void;
  /** One upstream frame. A promise: read no more upstream frames until it settles. */
  onUpstreamFrame(frame: F): Promise<void> | void;
  /** A side's framer failed (its `error` says why). The connector answers and closes. */
  onFramingError(side: Side, error: unknown): void;
  /** A handler threw or its promise rejected: a bug, not input. The connector closes. */
  onInternalError(side: Side, error: Error): void;
  /** A socket reported an error (the close follows). */
  onSocketError(side: Side, error: Error): void;
  /** Both sockets are gone (`reason` says which went first, or the connector's reason). */
  onClosed(reason: string): void;
}

export class FramePump<F> {
  private toClientQueue: Buffer[] = [];
  private toUpstreamQueue: Buffer[] = [];
  /** The connector is waiting on a frame of that side: stop reading it. */
  private clientBusy = false;
  private upstreamBusy = false;
  /** That peer's send buffer is full: stop reading the other side. */
  private clientFull = false;
  private upstreamFull = false;
  private closed_ = false;

  constructor(
    private readonly client: Socket,
    private readonly upstream: Socket,
    private readonly clientFramer: Framer<F>,
    private readonly upstreamFramer: Framer<F>,
    private readonly handlers: PumpHandlers<F>,
  ) {}

  get closed(): boolean {
    return this.closed_;
  }

  start(): void {
    const { client, upstream } = this;
    client.on('data', (c: Buffer) => {
      this.clientFramer.push(c);
      this.pumpClient();
    });
    upstream.on('data', (c: Buffer) => {
      this.upstreamFramer.push(c);
      this.pumpUpstream();
    });
    client.on('drain', () => {
      this.clientFull = false;
      this.flow();
    });
    upstream.on('drain', () => {
      this.upstreamFull = false;
      this.flow();
    });
    client.on('close', () => this.close('client closed'));
    upstream.on('close', () => this.close('upstream closed'));
    client.on('error', (e) => this.handlers.onSocketError('client', e));
    upstream.on('error', (e) => this.handlers.onSocketError('upstream', e));
    client.resume();
    upstream.resume();
  }

  /** Queue bytes for the caller (sent at the end of the current batch). */
  toClient(bytes: Buffer): void {
    this.toClientQueue.push(bytes);
  }

  /** Queue bytes for the upstream (sent at the end of the current batch). */
  toUpstream(bytes: Buffer): void {
    this.toUpstreamQueue.push(bytes);
  }

  /** Send what is queued for the caller now (e.g. a FATAL error before closing). */
  flushClient(): void {
    if (this.toClientQueue.length === 0 || this.closed_) return;
    const out = this.toClientQueue;
    this.toClientQueue = [];
    if (!writeAll(this.client, out) && !this.clientFull) {
      this.clientFull = true;
      this.upstream.pause();
    }
  }

  flushUpstream(): void {
    if (this.toUpstreamQueue.length === 0 || this.closed_) return;
    const out = this.toUpstreamQueue;
    this.toUpstreamQueue = [];
    if (!writeAll(this.upstream, out) && !this.upstreamFull) {
      this.upstreamFull = true;
      this.client.pause();
    }
  }

  /**
   * Close both sides (idempotent). `graceful`: end the caller's socket so that the last bytes
   * queued (a FATAL error) reach it, destroying it a second later at the latest.
   */
  close(reason: string, graceful = false): void {
    if (this.closed_) return;
    if (graceful) this.flushClient();
    this.closed_ = true;
    if (graceful) {
      this.client.end();
      setTimeout(() => this.client.destroy(), 1000).unref();
    } else this.client.destroy();
    this.upstream.destroy();
    this.handlers.onClosed(reason);
  }

  private flow(): void {
    if (this.closed_) return;
    if (!this.clientBusy && !this.upstreamFull) {
      if (this.client.isPaused()) this.client.resume();
      this.pumpClient();
    } else this.client.pause();
    if (this.closed_) return;
    if (!this.upstreamBusy && !this.clientFull) {
      if (this.upstream.isPaused()) this.upstream.resume();
      this.pumpUpstream();
    } else this.upstream.pause();
  }

  private pumpClient(): void {
    if (this.clientBusy || this.upstreamFull || this.closed_) return;
    const h = this.handlers;
    let f: F | null;
    while ((f = this.clientFramer.next()) !== null) {
      let wait: Promise<void> | void;
      try {
        wait = h.onClientFrame(f);
      } catch (e) {
        return h.onInternalError('client', e as Error);
      }
      if (this.closed_) return;
      if (wait) {
        this.clientBusy = true;
        this.client.pause();
        this.flushUpstream();
        this.flushClient();
        wait.then(
          () => {
            this.clientBusy = false;
            this.flushUpstream();
            this.flushClient();
            this.flow();
          },
          (e: Error) => h.onInternalError('client', e),
        );
        return;
      }
    }
    if (this.clientFramer.error) return h.onFramingError('client', this.clientFramer.error);
    this.flushUpstream();
    this.flushClient();
  }

  private pumpUpstream(): void {
    if (this.upstreamBusy || this.clientFull || this.closed_) return;
    const h = this.handlers;
    let f: F | null;
    while ((f = this.upstreamFramer.next()) !== null) {
      let wait: Promise<void> | void;
      try {
        wait = h.onUpstreamFrame(f);
      } catch (e) {
        return h.onInternalError('upstream', e as Error);
      }
      if (this.closed_) return;
      if (wait) {
        // Output held meanwhile is bounded (upstream is paused) and goes out in one write.
        this.upstreamBusy = true;
        this.upstream.pause();
        wait.then(
          () => {
            this.upstreamBusy = false;
            this.flushClient();
            this.flushUpstream();
            this.flow();
          },
          (e: Error) => h.onInternalError('upstream', e),
        );
        return;
      }
    }
    if (this.upstreamFramer.error) return h.onFramingError('upstream', this.upstreamFramer.error);
    this.flushClient();
    this.flushUpstream();
  }
}

/** Batches up to this size are copied into one buffer: one plain write instead of a writev. */
const COALESCE_BYTES = 64 * 1024;

/**
 * One syscall for a batch of messages; false when the socket's buffer is full. A small
 * batch (the common case: a handful of protocol messages) is copied into one buffer — cheaper
 * than node's writev path, which allocates per chunk and per request. A large one is corked.
 */
function writeAll(s: Socket, out: Buffer[]): boolean {
  if (out.length === 1) return s.write(out[0]);
  let size = 0;
  for (const b of out) size += b.length;
  if (size <= COALESCE_BYTES) return s.write(Buffer.concat(out, size));
  s.cork();
  let ok = true;
  for (const b of out) ok = s.write(b);
  s.uncork();
  return ok;
}
