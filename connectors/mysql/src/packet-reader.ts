/**
 * Reading packets one at a time with `await`, for the connection phase (greeting, TLS,
 * authentication) on either side, before the FramePump takes the sockets over.
 */
import type { Socket } from 'node:net';
import { PacketFramer, type Packet } from './packet.js';

export class PacketReader {
  private readonly framer: PacketFramer;
  private waiter: ((p: Packet | null) => void) | null = null;
  private ended = false;
  private readonly onData = (c: Buffer) => {
    this.framer.push(c);
    this.wake();
  };
  private readonly onEnd = () => {
    this.ended = true;
    this.wake();
  };

  constructor(
    private readonly socket: Socket,
    max: number,
  ) {
    this.framer = new PacketFramer(max);
    socket.on('data', this.onData);
    socket.on('close', this.onEnd);
    socket.on('end', this.onEnd);
    socket.on('error', this.onEnd);
    socket.resume();
  }

  /** The next packet; null when the peer left, or sent an oversized packet. */
  next(): Promise<Packet | null> {
    const p = this.framer.next();
    if (p) return Promise.resolve(copy(p));
    if (this.ended || this.framer.error) return Promise.resolve(null);
    return new Promise((resolve) => (this.waiter = resolve));
  }

  /** The peer sent a packet over the size limit (or a header that cannot be one). */
  get oversized(): boolean {
    return this.framer.error !== null;
  }

  /** Bytes received beyond the packets read. */
  get buffered(): number {
    return this.framer.buffered;
  }

  /** Stop reading: listeners removed, socket paused; returns what was received but not read. */
  detach(): Buffer {
    this.socket.off('data', this.onData);
    this.socket.off('close', this.onEnd);
    this.socket.off('end', this.onEnd);
    this.socket.off('error', this.onEnd);
    this.socket.pause();
    const w = this.waiter;
    this.waiter = null;
    w?.(null);
    return Buffer.from(this.framer.detach());
  }

  private wake(): void {
    const w = this.waiter;
    if (!w) return;
    const p = this.framer.next();
    if (p) {
      this.waiter = null;
      w(copy(p));
    } else if (this.ended || this.framer.error) {
      this.waiter = null;
      w(null);
    }
  }
}

function copy(p: Packet): Packet {
  return { seq: p.seq, parts: p.parts, payload: Buffer.from(p.payload), raw: null };
}
