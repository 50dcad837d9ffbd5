/**
 * One direction of a channel: bytes read from `src`, passed through the connector's handler
 * (which may inspect, hold back, or wait — a judgement, an audit write), written to `dst`.
 *
 * Back-pressure: when `dst` will not take more (its buffer is full: the far side's SSH
 * window is closed) `src` is paused, and ssh2 then stops granting window to the sender, so
 * a slow side never makes the gateway buffer without bound; when the handler returns a
 * promise, `src` is paused until it settles. Per direction the gateway holds at most the
 * stream buffers (a channel window, 2 MiB) plus what the handler keeps.
 */
import type { Readable, Writable } from 'node:stream';

export type Handler = (chunk: Buffer) => Buffer[] | Promise<Buffer[]>;

export class Pipe {
  bytes = 0;
  private busy = false;
  private full = false;
  private last: Promise<void> = Promise.resolve();
  private stopped = false;
  private readonly dstClosed: Promise<void>;

  constructor(
    private readonly src: Readable,
    private readonly dst: Writable,
    private readonly handler: Handler,
    private readonly onError: (e: Error) => void,
    private readonly onActivity: () => void = () => {},
  ) {
    src.on('data', (c: Buffer) => this.onData(c));
    dst.on('drain', () => {
      this.full = false;
      this.flow();
    });
    // ssh2 never calls back a write made after the far side closed: do not wait for those.
    this.dstClosed = new Promise((resolve) => dst.once('close', () => resolve()));
    // The source may have been paused while the request was judged: start reading now.
    src.resume();
  }

  /** Stop reading and writing (the channel is going away). */
  stop(): void {
    this.stopped = true;
  }

  /** Resolves once everything handed to `dst` so far was taken by it (ssh2 sent it). */
  flushed(): Promise<void> {
    return Promise.race([this.last, this.dstClosed]);
  }

  /** Write bytes the connector makes up itself (a refusal) in order with relayed ones. */
  inject(b: Buffer): void {
    this.write([b]);
  }

  private onData(c: Buffer): void {
    if (this.stopped) return;
    this.bytes += c.length;
    this.onActivity();
    let out: Buffer[] | Promise<Buffer[]>;
    try {
      out = this.handler(c);
    } catch (e) {
      this.onError(e as Error);
      return;
    }
    if (Array.isArray(out)) {
      this.write(out);
      return;
    }
    this.busy = true;
    this.src.pause();
    out.then(
      (bufs) => {
        this.busy = false;
        this.write(bufs);
        this.flow();
      },
      (e: Error) => this.onError(e),
    );
  }

  private write(bufs: Buffer[]): void {
    if (this.stopped) return;
    const dst = this.dst;
    for (const b of bufs) {
      if (b.length === 0 || dst.writableEnded || dst.destroyed) continue;
      this.last = new Promise<void>((resolve) => dst.write(b, () => resolve()));
      if (dst.writableNeedDrain) this.full = true;
    }
    if (this.full) this.src.pause();
  }

  private flow(): void {
    if (this.stopped) return;
    if (!this.busy && !this.full) this.src.resume();
  }
}
