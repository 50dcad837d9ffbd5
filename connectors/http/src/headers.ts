/**
 * Header handling in both directions: hop-by-hop removal (RFC 9110 §7.6.1), the caller's
 * credential removed, X-Forwarded-* set by the gateway alone, and the audit view of the
 * request headers with credentials left out.
 */
import { canonicalHeaderName, OVERRIDE_HEADERS } from './method-override.js';

/** Hop-by-hop headers (RFC 9110 §7.6.1): they describe one connection, never relayed either way. */
const HOP_BY_HOP = ['connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization'];

/** Request headers never forwarded: hop-by-hop, the caller's credentials, and the ones the gateway sets itself. */
const DROP_REQUEST = new Set([
  ...HOP_BY_HOP,
  'authorization',
  'host', // undici sets the upstream's own Host; the caller's goes to X-Forwarded-Host
  'expect', // node:http answers 100-continue itself; undici refuses the header
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'http2-settings',
  // Some frameworks (Symfony, IIS URL Rewrite) route on these instead of the request target:
  // a path the policy never judged.
  'x-original-url',
  'x-rewrite-url',
]);

/** Also removed for a masked caller: a part of a body cannot be masked, so it gets whole ones. */
const RANGE_HEADERS = ['range', 'if-range'];

/**
 * Request headers removed on top of DROP_REQUEST, by caller kind; built once per connector so
 * the hot path does one Set lookup per header.
 */
export interface DropSets {
  plain: ReadonlySet<string> | null;
  masked: ReadonlySet<string>;
}

export function dropSets(stripMethodOverride: boolean): DropSets {
  const override = stripMethodOverride ? [...OVERRIDE_HEADERS] : [];
  return { plain: override.length > 0 ? new Set(override) : null, masked: new Set([...override, ...RANGE_HEADERS]) };
}

/** Response headers never relayed to the caller. */
const DROP_RESPONSE = new Set(HOP_BY_HOP);

/** Header names whose values are credentials: never written to the audit trail. */
const SECRET_HEADERS = new Set([
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'x-api-key',
  'api-key',
  'x-auth-token',
  'x-access-token',
  'x-csrf-token',
  'x-amz-security-token',
]);

/** Names listed in a Connection header are hop-by-hop too (lower-cased). */
function connectionTokens(value: string | undefined): Set<string> | null {
  if (!value) return null;
  // The usual values name no extra header: skip the Set (runs for nearly every response).
  const v = value.length <= 10 ? value.toLowerCase() : '';
  if (v === 'keep-alive' || v === 'close' || v === 'upgrade') return null;
  const set = new Set<string>();
  for (const t of value.split(',')) {
    const n = t.trim().toLowerCase();
    if (n) set.add(n);
  }
  return set;
}

export interface ForwardInfo {
  /** Peer IP address of the caller. */
  clientIp: string;
  proto: 'http' | 'https';
  /** Host header the caller sent (may be undefined on HTTP/1.0). */
  host: string | undefined;
}

/**
 * Builds the flat `[name, value, …]` header list undici takes, straight from rawHeaders
 * (no object re-keying), with the injected headers appended last so they cannot be shadowed.
 */
export function upstreamRequestHeaders(
  rawHeaders: string[],
  connection: string | undefined,
  fwd: ForwardInfo,
  injected: readonly string[],
  skipContentLength = false,
  drop: ReadonlySet<string> | null = null,
): string[] {
  const extra = connectionTokens(connection);
  const out: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i];
    // `X_Original_URL` reaches a CGI-style server as the same variable as `X-Original-URL`.
    const lower = canonicalHeaderName(name.toLowerCase());
    if (DROP_REQUEST.has(lower) || (extra !== null && extra.has(lower)) || (drop !== null && drop.has(lower))) continue;
    if (skipContentLength && lower === 'content-length') continue;
    if (injectedHas(injected, lower)) continue;
    out.push(name, rawHeaders[i + 1]);
  }
  // The caller's own X-Forwarded-* are dropped above: the upstream only sees what the gateway vouches for.
  out.push('x-forwarded-for', fwd.clientIp, 'x-forwarded-proto', fwd.proto);
  if (fwd.host) out.push('x-forwarded-host', fwd.host);
  for (let i = 0; i < injected.length; i++) out.push(injected[i]);
  return out;
}

// injected is [lowerName, value, …]; a handful of entries, a linear scan beats a Set here.
function injectedHas(injected: readonly string[], lower: string): boolean {
  for (let i = 0; i < injected.length; i += 2) if (injected[i] === lower) return true;
  return false;
}

export interface ResponseHead {
  /** Flat `[name, value, …]` for `res.writeHead`. */
  headers: string[];
  contentType: string;
  /** Content-Type headers seen: more than one makes the body's type ambiguous. */
  contentTypes: number;
  contentEncoding: string;
  /** -1 when absent. */
  contentLength: number;
}

/** Filters upstream raw response headers (Buffers from undici) for relay to the caller. */
export function relayResponseHeaders(raw: Buffer[] | string[]): ResponseHead {
  const headers: string[] = [];
  let contentType = '';
  let contentTypes = 0;
  let contentEncoding = '';
  let contentLength = -1;
  let extra: Set<string> | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].length === 10 && raw[i].toString().toLowerCase() === 'connection') extra = connectionTokens(raw[i + 1].toString());
  }
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toString();
    const lower = name.toLowerCase();
    if (DROP_RESPONSE.has(lower) || (extra !== null && extra.has(lower))) continue;
    const value = raw[i + 1].toString();
    if (lower === 'content-type') {
      contentType = value.toLowerCase();
      contentTypes++;
    }
    // Several Content-Encoding headers (or a list) mean stacked codings: keep them all, in order.
    else if (lower === 'content-encoding') contentEncoding = contentEncoding ? `${contentEncoding}, ${value.trim().toLowerCase()}` : value.trim().toLowerCase();
    else if (lower === 'content-length') contentLength = Number(value);
    headers.push(name, value);
  }
  return { headers, contentType, contentTypes, contentEncoding, contentLength };
}

/** Replaces (or removes, when value is null) a header in a flat list, case-insensitively. */
export function setHeader(headers: string[], lowerName: string, value: string | null): void {
  for (let i = headers.length - 2; i >= 0; i -= 2) {
    if (headers[i].toLowerCase() === lowerName) headers.splice(i, 2);
  }
  if (value !== null) headers.push(lowerName, value);
}

/**
 * Request headers as the audit keeps them: lower-case names, credentials left out (only
 * their presence is noted), values passed through `mask` (detectors) when masking is active.
 */
export function auditHeaders(rawHeaders: string[], mask: ((v: string) => string) | null): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const lower = rawHeaders[i].toLowerCase();
    const value =
      SECRET_HEADERS.has(lower) || lower.includes('secret') || lower.includes('token') || lower.includes('password')
        ? '[removed]'
        : mask
          ? mask(rawHeaders[i + 1])
          : rawHeaders[i + 1];
    out[lower] = out[lower] === undefined ? value : `${out[lower]}, ${value}`;
  }
  return out;
}

/** Lower-cased request headers as a map, for CEL `request.headers` (credentials left out). */
export function celHeaders(rawHeaders: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const lower = rawHeaders[i].toLowerCase();
    if (lower === 'authorization' || lower === 'proxy-authorization' || lower === 'cookie') continue;
    out[lower] = out[lower] === undefined ? rawHeaders[i + 1] : `${out[lower]}, ${rawHeaders[i + 1]}`;
  }
  return out;
}
