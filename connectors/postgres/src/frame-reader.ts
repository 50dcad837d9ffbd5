/**
 * Awaitable frames from a socket, for the short request/response exchanges of a
 * handshake (upstream login, cancel). The relay proper does not use this: it is callback
 * driven so that the hot path creates no promises per message.
 */
import type { Socket } from 'node:net';
import { MessageFramer, type Frame } from './framer.js';

export class FrameReader {
  private readonly framer: MessageFramer;
  private waiter: ((f: Frame | null) => void) | null = null;
  private closed = false;
  private readonly onData = (chunk: Buffer) => {
    this.framer.push(chunk);
    this.wake();
  };
  private readonly onEnd = () => {
    this.closed = true;
    this.wake();
  };

  constructor(
    private readonly socket: Socket,
    maxMessageBytes: number,
  ) {
    this.framer = new MessageFramer(maxMessageBytes);
    socket.on('data', this.onData);
    socket.on('close', this.onEnd);
    socket.on('error', this.onEnd);
  }

  /** Next frame, or null when the socket closed or sent a bad frame. */
  next(): Promise<Frame | null> {
    const f = this.framer.next();
    if (f || this.closed || this.framer.error) return Promise.resolve(f);
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }

  /** Stop listening; returns bytes received but not consumed (normally none). */
  detach(): number {
    this.socket.off('data', this.onData);
    this.socket.off('close', this.onEnd);
    this.socket.off('error', this.onEnd);
    return this.framer.buffered;
  }

  private wake(): void {
    const w = this.waiter;
    if (!w) return;
    const f = this.framer.next();
    if (f || this.closed || this.framer.error) {
      this.waiter = null;
      w(f);
    }
  }
}

/** Resolves with the first byte-sized reply (SSLRequest answer) or null on close. */
export function readOneByte(socket: Socket): Promise<{ byte: number; extra: boolean } | null> {
  return new Promise((resolve) => {
    const done = (v: { byte: number; extra: boolean } | null) => {
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.off('error', onClose);
      resolve(v);
    };
    const onData = (c: Buffer) => {
      socket.pause();
      done({ byte: c[0], extra: c.length > 1 });
    };
    const onClose = () => done(null);
    socket.on('data', onData);
    socket.on('close', onClose);
    socket.on('error', onClose);
  });
}
