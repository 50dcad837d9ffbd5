/**
 * Bytes that would carry a value past the detectors unseen although the headers say nothing
 * of it: a compressed stream with no Content-Encoding naming it (the caller decompresses it
 * by hand), or UTF-16/32 text. Checked on the decoded body before any masking.
 */
import { constants, inflateSync } from 'node:zlib';

const MAGIC: readonly [string, readonly number[]][] = [
  ['gzip', [0x1f, 0x8b]],
  ['zstd', [0x28, 0xb5, 0x2f, 0xfd]],
  ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  ['7z', [0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c]],
  ['lz4', [0x04, 0x22, 0x4d, 0x18]],
  ['zip', [0x50, 0x4b, 0x03, 0x04]],
  ['zip', [0x50, 0x4b, 0x05, 0x06]],
  ['UTF-32', [0xff, 0xfe, 0x00, 0x00]],
  ['UTF-32', [0x00, 0x00, 0xfe, 0xff]],
  ['UTF-16', [0xff, 0xfe]],
  ['UTF-16', [0xfe, 0xff]],
];

/** The name of a hidden format `b` starts with, or null. */
export function hiddenFormat(b: Buffer): string | null {
  for (const [name, sig] of MAGIC) if (startsWith(b, sig)) return name;
  if (b.length >= 10 && b[0] === 0x42 && b[1] === 0x5a && b[2] === 0x68 && b[3] >= 0x31 && b[3] <= 0x39 && b.readUIntBE(4, 6) === 0x314159265359) return 'bzip2';
  if (isZlib(b)) return 'zlib';
  return null;
}

/**
 * A zlib header (RFC 1950: deflate, window ≤ 32 KiB, check bits) is two bytes that some text
 * starts with too (`x^`, `H…`): only a prefix that really inflates counts.
 */
function isZlib(b: Buffer): boolean {
  if (b.length < 3 || (b[0] & 0x0f) !== 8 || b[0] >> 4 > 7 || ((b[0] << 8) | b[1]) % 31 !== 0) return false;
  try {
    inflateSync(b.subarray(0, 256), { finishFlush: constants.Z_SYNC_FLUSH });
    return true;
  } catch {
    return false;
  }
}

function startsWith(b: Buffer, sig: readonly number[]): boolean {
  if (b.length < sig.length) return false;
  for (let i = 0; i < sig.length; i++) if (b[i] !== sig[i]) return false;
  return true;
}

/**
 * Control characters no text carries (NUL, most C0 controls; tab, line ends, form feed, ESC
 * and the JSON-seq record separator are fine): a body declared as text that holds them is
 * binary — most likely compressed (brotli has no magic number) — and cannot be masked.
 */
export const BINARY_IN_TEXT = /[\x00-\x08\x0e-\x1a\x1c\x1d\x1f]/;
