/**
 * The upstream credential: what Gatehouse adds to every forwarded request so that the caller
 * never holds the target's secret. Resolved once at start; the hot path only appends it.
 */
import type { HttpUpstream } from './config.js';
import { err, ok, type Result } from '@gatehouse/core';

export interface UpstreamAuth {
  /** Flat `[lowerName, value, …]` appended to every request (overrides the caller's). */
  headers: string[];
  /** `name=value` (already encoded) appended to every query string, or '' for none. */
  query: string;
}

export function resolveUpstreamAuth(up: HttpUpstream): Result<UpstreamAuth> {
  const headers: string[] = [];
  for (const [name, value] of Object.entries(up.headers ?? {})) {
    if (/[\r\n\0]/.test(value) || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) {
      return err('http.config', `upstream.headers: invalid header ${JSON.stringify(name)}`);
    }
    headers.push(name.toLowerCase(), value);
  }
  let query = '';
  const c = up.credential;
  if (c) {
    const need = (k: 'token' | 'username' | 'password' | 'name' | 'value') => {
      const v = c[k];
      if (v === undefined || v === '') throw new Error(`upstream.credential: type ${c.type} needs "${k}"`);
      if (/[\r\n\0]/.test(v)) throw new Error(`upstream.credential: "${k}" contains a line break`);
      return v;
    };
    try {
      switch (c.type) {
        case 'bearer':
          put(headers, 'authorization', `Bearer ${need('token')}`);
          break;
        case 'basic':
          put(headers, 'authorization', `Basic ${Buffer.from(`${need('username')}:${c.password ?? ''}`).toString('base64')}`);
          break;
        case 'header':
          put(headers, need('name').toLowerCase(), need('value'));
          break;
        case 'query':
          query = `${encodeURIComponent(need('name'))}=${encodeURIComponent(need('value'))}`;
          break;
      }
    } catch (e) {
      return err('http.config', (e as Error).message);
    }
  }
  return ok({ headers, query });
}

function put(headers: string[], lower: string, value: string): void {
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i] === lower) {
      headers[i + 1] = value;
      return;
    }
  }
  headers.push(lower, value);
}

/**
 * Removes the credential's own parameter from the caller's query (a caller must not pick the
 * upstream key) and appends the configured one.
 */
export function withCredentialQuery(query: string, credential: string): string {
  if (!credential) return query;
  if (!query) return credential;
  const name = credential.slice(0, credential.indexOf('=') + 1);
  const kept = query.split('&').filter((p) => !p.startsWith(name));
  kept.push(credential);
  return kept.join('&');
}
