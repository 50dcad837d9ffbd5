/** Bounded buffering of a body stream: the only place the connector holds a whole body. */
import type { Readable } from 'node:stream';

export type Collected = { ok: true; body: Buffer } | { ok: false; reason: 'too-large' | 'aborted' };

/**
 * Reads `stream` to its end, giving up (and leaving the stream paused, unread) as soon as
 * more than `limit` bytes arrived. `expected` (Content-Length, or -1) lets an oversized body
 * be refused before a single byte is read.
 */
export function collectBody(stream: Readable, limit: number, expected: number): Promise<Collected> {
  if (expected > limit) return Promise.resolve({ ok: false, reason: 'too-large' });
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (r: Collected) => {
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onAbort);
      stream.off('close', onAbort);
      resolve(r);
    };
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        stream.pause();
        done({ ok: false, reason: 'too-large' });
        return;
      }
      chunks.push(c);
    };
    const onEnd = () => done({ ok: true, body: chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size) });
    const onAbort = () => done({ ok: false, reason: 'aborted' });
    stream.on('data', onData);
    stream.on('end', onEnd);
    stream.on('error', onAbort);
    stream.on('close', onAbort);
  });
}

/** First non-whitespace byte is `{` or `[`: worth a JSON.parse attempt. */
export function looksLikeJson(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) {
    const c = b[i];
    if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) continue;
    return c === 0x7b || c === 0x5b;
  }
  return false;
}

export function parseJsonOrNull(b: Buffer): unknown {
  if (!looksLikeJson(b)) return null;
  try {
    return JSON.parse(b.toString('utf8'));
  } catch {
    return null;
  }
}
