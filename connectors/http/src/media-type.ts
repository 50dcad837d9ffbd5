/**
 * What a response's Content-Type means for masking: which masking applies (JSON paths over a
 * document, per line, or detectors over text) and in which character space the detectors
 * can read the bytes. Detectors look for ASCII; a charset that does not keep ASCII as ASCII
 * (UTF-16, UTF-32, ISO-2022, Shift_JIS…) would hide every value from them.
 */

/**
 * `json` one document; `ndjson` one per line; `sse` text/event-stream; `text` declared text
 * (must not hold binary bytes); `opaque` anything else, a missing Content-Type included.
 */
export type BodyKind = 'json' | 'ndjson' | 'sse' | 'text' | 'opaque';

/** `utf8`: must be valid UTF-8; `latin1`: read byte for byte (ASCII-compatible charsets, or none named). */
export type CharSpace = 'utf8' | 'latin1';

export interface MediaType {
  kind: BodyKind;
  /** Null when the declared charset cannot be read by the detectors (the body is refused). */
  space: CharSpace | null;
  charset: string | null;
}

const NDJSON = new Set([
  'application/x-ndjson',
  'application/ndjson',
  'application/jsonl',
  'application/x-jsonl',
  'application/jsonlines',
  'application/x-jsonlines',
  'application/json-seq',
]);
const TEXT_APPS = new Set([
  'application/xml',
  'application/x-www-form-urlencoded',
  'application/javascript',
  'application/ecmascript',
  'application/x-javascript',
  'application/yaml',
  'application/x-yaml',
  'application/toml',
  'application/csv',
  'application/sql',
  'application/graphql',
]);

/** `contentType` is the lower-cased header value (relayResponseHeaders lower-cases it). */
export function mediaType(contentType: string): MediaType {
  const semi = contentType.indexOf(';');
  const essence = (semi === -1 ? contentType : contentType.slice(0, semi)).trim();
  const charset = semi === -1 ? null : charsetParam(contentType.slice(semi + 1));
  const kind = bodyKind(essence);
  return { kind, charset, space: charSpace(kind, charset) };
}

export function bodyKind(essence: string): BodyKind {
  if (essence === 'application/json' || essence.endsWith('+json') || essence === 'text/json') return 'json';
  if (NDJSON.has(essence) || essence.endsWith('+json-seq')) return 'ndjson';
  if (essence === 'text/event-stream') return 'sse';
  if (essence.startsWith('text/') || essence.endsWith('+xml') || TEXT_APPS.has(essence)) return 'text';
  return 'opaque';
}

function charsetParam(params: string): string | null {
  for (const p of params.split(';')) {
    const eq = p.indexOf('=');
    if (eq === -1 || p.slice(0, eq).trim() !== 'charset') continue;
    return p
      .slice(eq + 1)
      .trim()
      .replace(/^"(.*)"$/, '$1');
  }
  return null;
}

const UTF8 = new Set(['utf-8', 'utf8', 'unicode-1-1-utf-8']);
/** Charsets in which every ASCII byte means the ASCII character: read as latin1, byte for byte. */
const ASCII_COMPATIBLE = /^(us-ascii|ascii|iso-8859-([1-9]|1[0-6])|iso8859-([1-9]|1[0-6])|iso_8859-1|latin-?1|l1|windows-125[0-8]|cp125[0-8]|koi8-[ru])$/;

function charSpace(kind: BodyKind, charset: string | null): CharSpace | null {
  if (kind === 'json' || kind === 'ndjson') {
    // JSON is UTF-8 (RFC 8259 §8.1); ASCII is a subset of it.
    return charset === null || UTF8.has(charset) || charset === 'us-ascii' ? 'utf8' : null;
  }
  if (charset === null) return 'latin1';
  if (UTF8.has(charset)) return 'utf8';
  return ASCII_COMPATIBLE.test(charset) ? 'latin1' : null;
}
