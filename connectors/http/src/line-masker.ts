/**
 * Streaming detector masking for line-oriented text (server-sent events): complete lines
 * are masked and sent as they arrive, the unfinished last line is held until its end comes.
 * No detector matches across a line end, so masking line by line finds what masking the
 * whole body would. Bytes are read as latin1 (one char per byte): lines are cut on the LF/CR
 * bytes alone, and everything the detectors leave alone goes out byte for byte.
 */
import type { Masker } from '@gatehouse/core';
import { BINARY_IN_TEXT } from './sniff.js';

/** Why a stream cannot be masked further: the caller's connection is then cut. */
export type LineFailure = { error: string };

const EMPTY = Buffer.alloc(0);

export class LineMasker {
  private carry: Buffer | null = null;

  constructor(
    private readonly masker: Masker,
    /** Longest line held, bytes; a longer one is an error (it cannot be masked without the rest). */
    private readonly limit: number,
  ) {}

  /** The masked complete lines of `chunk` (with what was held), or why the stream must stop. */
  push(chunk: Buffer): Buffer | LineFailure {
    const buf = this.carry === null ? chunk : Buffer.concat([this.carry, chunk]);
    const cut = afterLastLineEnd(buf);
    // Copy the held tail so a large chunk is not kept alive by a few bytes of it.
    this.carry = cut === buf.length ? null : Buffer.from(buf.subarray(cut));
    if (this.carry !== null && this.carry.length > this.limit) {
      return { error: `a line of the event stream exceeds max_body_bytes (${this.limit}); cannot be masked` };
    }
    return cut === 0 ? EMPTY : this.mask(cut === buf.length ? buf : buf.subarray(0, cut));
  }

  /** The held last line, masked (the body ended without a final line end). */
  end(): Buffer | LineFailure {
    const rest = this.carry;
    this.carry = null;
    return rest === null ? EMPTY : this.mask(rest);
  }

  private mask(b: Buffer): Buffer | LineFailure {
    const text = b.toString('latin1');
    // Compressed or binary bytes in an event stream would hide values from the detectors.
    if (BINARY_IN_TEXT.test(text)) return { error: 'event stream holds binary data (compressed?); cannot be masked' };
    const out = this.masker.maskText(text);
    return out === text ? b : Buffer.from(out, 'latin1');
  }
}

function afterLastLineEnd(b: Buffer): number {
  for (let i = b.length - 1; i >= 0; i--) if (b[i] === 0x0a || b[i] === 0x0d) return i + 1;
  return 0;
}
