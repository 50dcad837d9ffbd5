/**
 * GET a small JSON document (discovery, JWKS) with every wait and every byte bounded:
 * one deadline covers connect, headers and body; the body is cut off at `maxBytes`;
 * redirects are refused (a key set must come from the configured place).
 */
import { err, ok, type Result } from '@gatehouse/core';

export interface FetchJsonOptions {
  timeoutMs: number;
  maxBytes: number;
  /** Aborted when the authenticator closes. */
  signal: AbortSignal;
}

export async function fetchJson(url: URL, opts: FetchJsonOptions): Promise<Result<unknown>> {
  const signal = AbortSignal.any([AbortSignal.timeout(opts.timeoutMs), opts.signal]);
  try {
    const res = await fetch(url, {
      method: 'GET',
      redirect: 'error',
      signal,
      headers: { accept: 'application/json, application/jwk-set+json' },
    });
    if (res.status !== 200) {
      await res.body?.cancel();
      return err('fetch.status', `HTTP ${res.status}`);
    }
    const declared = Number(res.headers.get('content-length') ?? NaN);
    if (declared > opts.maxBytes) {
      await res.body?.cancel();
      return err('fetch.too_large', `body larger than ${opts.maxBytes} bytes`);
    }
    const body = await readBounded(res, opts.maxBytes);
    if (!body.ok) return body;
    return ok(JSON.parse(body.value) as unknown);
  } catch (e) {
    const name = (e as Error).name;
    if (name === 'TimeoutError') return err('fetch.timeout', `no answer within ${opts.timeoutMs} ms`);
    if (name === 'AbortError') return err('fetch.aborted', 'aborted');
    if (e instanceof SyntaxError) return err('fetch.json', 'body is not JSON');
    return err('fetch.failed', describe(e));
  }
}

async function readBounded(res: Response, maxBytes: number): Promise<Result<string>> {
  if (!res.body) return ok('');
  const reader: ReadableStreamDefaultReader<Uint8Array> = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel();
      return err('fetch.too_large', `body larger than ${maxBytes} bytes`);
    }
    chunks.push(value);
  }
  return ok(Buffer.concat(chunks, size).toString('utf8'));
}

/** undici hides the reason (ECONNREFUSED, …) in `cause`; surface it for the log line. */
function describe(e: unknown): string {
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (e as Error).message ?? String(e);
}
