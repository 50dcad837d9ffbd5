/**
 * Splits a byte stream of typed PostgreSQL messages (1 type byte, int32 length that counts
 * itself, payload) into whole messages without copying when it can.
 *
 * A message that lies inside one received chunk is returned as a view into that chunk.
 * Only a message split across chunks is copied, once, into a buffer of exactly its size,
 * allocated when its header is known (so the copy is bounded by `maxMessageBytes`).
 */

export interface Frame {
  /** Message type byte (e.g. 0x51 'Q'). */
  type: number;
  /** The whole message, header included: forward it as is. */
  bytes: Buffer;
}

export type FrameError = { code: 'too_large'; length: number } | { code: 'bad_length'; length: number };

export class MessageFramer {
  /** Current chunk being consumed and the read offset in it. */
  private chunk: Buffer | null = null;
  private offset = 0;
  /** A message being assembled across chunks (exact size), and how much of it is filled. */
  private partial: Buffer | null = null;
  private filled = 0;
  /** Up to 4 header bytes seen before the length was complete. */
  private readonly head = Buffer.allocUnsafe(5);
  private headLen = 0;
  /** Set once a bad header was seen; the stream is unusable afterwards. */
  error: FrameError | null = null;

  constructor(private readonly maxMessageBytes: number) {}

  /** Bytes received but not yet returned as frames. */
  get buffered(): number {
    return (this.chunk ? this.chunk.length - this.offset : 0) + this.filled + this.headLen;
  }

  push(chunk: Buffer): void {
    if (this.chunk && this.offset < this.chunk.length) {
      // Only happens when the consumer stopped mid-chunk (paused); keep the rest in order.
      this.chunk = Buffer.concat([this.chunk.subarray(this.offset), chunk]);
    } else this.chunk = chunk;
    this.offset = 0;
  }

  /** The next whole message, or null when more bytes are needed (or `error` is set). */
  next(): Frame | null {
    if (this.error) return null;
    const c = this.chunk;
    if (this.partial) {
      if (!c) return null;
      const want = this.partial.length - this.filled;
      const n = Math.min(want, c.length - this.offset);
      c.copy(this.partial, this.filled, this.offset, this.offset + n);
      this.filled += n;
      this.offset += n;
      this.dropChunkIfDone();
      if (this.filled < this.partial.length) return null;
      const bytes = this.partial;
      this.partial = null;
      this.filled = 0;
      return { type: bytes[0], bytes };
    }
    if (!c) return null;
    if (this.headLen > 0) {
      // A header split across chunks: complete it byte by byte (at most 4 copies).
      while (this.headLen < 5 && this.offset < c.length) this.head[this.headLen++] = c[this.offset++];
      this.dropChunkIfDone();
      if (this.headLen < 5) return null;
      const total = this.checkLength(this.head.readInt32BE(1));
      if (total < 0) return null;
      this.partial = Buffer.allocUnsafe(total);
      this.head.copy(this.partial, 0, 0, 5);
      this.filled = 5;
      this.headLen = 0;
      return this.next();
    }
    const avail = c.length - this.offset;
    if (avail < 5) {
      c.copy(this.head, 0, this.offset);
      this.headLen = avail;
      this.offset = c.length;
      this.dropChunkIfDone();
      return null;
    }
    const total = this.checkLength(c.readInt32BE(this.offset + 1));
    if (total < 0) return null;
    if (avail >= total) {
      const bytes = c.subarray(this.offset, this.offset + total);
      this.offset += total;
      this.dropChunkIfDone();
      return { type: bytes[0], bytes };
    }
    this.partial = Buffer.allocUnsafe(total);
    c.copy(this.partial, 0, this.offset);
    this.filled = avail;
    this.offset = c.length;
    this.dropChunkIfDone();
    return null;
  }

  /** Whole-message size (type byte + length) or -1 with `error` set. */
  private checkLength(len: number): number {
    if (len < 4) {
      this.error = { code: 'bad_length', length: len };
      return -1;
    }
    if (len + 1 > this.maxMessageBytes) {
      this.error = { code: 'too_large', length: len + 1 };
      return -1;
    }
    return len + 1;
  }

  private dropChunkIfDone(): void {
    if (this.chunk && this.offset >= this.chunk.length) {
      this.chunk = null;
      this.offset = 0;
    }
  }
}
