/**
 * Content-Encoding for masking: decode gzip / deflate / br (possibly stacked) (bounded, off the event loop via
 * zlib's thread pool) and re-encode the masked body with the same coding.
 */
import { brotliCompress, brotliDecompress, deflate, gunzip, gzip, inflate, constants } from 'node:zlib';
import { promisify } from 'node:util';

const gunzipA = promisify(gunzip);
const inflateA = promisify(inflate);
const brotliDecompressA = promisify(brotliDecompress);
const gzipA = promisify(gzip);
const deflateA = promisify(deflate);
const brotliCompressA = promisify(brotliCompress);

/** Codings in the order they were applied (`gzip, br` = gzip first); identity dropped. */
export function codings(header: string): string[] {
  if (header === '') return [];
  const out: string[] = [];
  for (const c of header.split(',')) {
    const t = c.trim();
    if (t !== '' && t !== 'identity') out.push(t);
  }
  return out;
}

const KNOWN = new Set(['gzip', 'x-gzip', 'deflate', 'br']);

/** At most 3 stacked codings: more is no legitimate server's output. */
export function supportedEncoding(header: string): boolean {
  const list = codings(header);
  return list.length <= 3 && list.every((c) => KNOWN.has(c));
}

/**
 * Undoes every coding, last applied first. Throws (RangeError from zlib) when a decoded
 * layer would exceed `limit`: a zip bomb is refused, not inflated.
 */
export async function decodeBody(body: Buffer, header: string, limit: number): Promise<Buffer> {
  const list = codings(header);
  let b = body;
  for (let i = list.length - 1; i >= 0; i--) b = await decodeOne(b, list[i], limit);
  return b;
}

/** Re-applies the codings in their original order. */
export async function encodeBody(body: Buffer, header: string): Promise<Buffer> {
  let b = body;
  for (const c of codings(header)) b = await encodeOne(b, c);
  return b;
}

function decodeOne(body: Buffer, enc: string, limit: number): Promise<Buffer> {
  switch (enc) {
    case 'gzip':
    case 'x-gzip':
      return gunzipA(body, { maxOutputLength: limit });
    case 'deflate':
      return inflateA(body, { maxOutputLength: limit });
    case 'br':
      return brotliDecompressA(body, { maxOutputLength: limit });
    default:
      throw new Error(`unsupported content-encoding ${enc}`);
  }
}

function encodeOne(body: Buffer, enc: string): Promise<Buffer> {
  switch (enc) {
    case 'gzip':
    case 'x-gzip':
      return gzipA(body);
    case 'deflate':
      return deflateA(body);
    case 'br':
      // Quality 5: a masked body is re-encoded on every response; 11 (the default) costs ~20x the CPU.
      return brotliCompressA(body, { params: { [constants.BROTLI_PARAM_QUALITY]: 5 } });
    default:
      throw new Error(`unsupported content-encoding ${enc}`);
  }
}
