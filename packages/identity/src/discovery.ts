/**
 * OpenID Connect discovery: `<issuer>/.well-known/openid-configuration` → `jwks_uri`.
 * The document must name the same issuer (OIDC Discovery §4.3), otherwise a mix-up
 * between providers could hand us someone else's keys.
 */
import { err, ok, type Result } from '@gatehouse/core';
import { fetchJson, type FetchJsonOptions } from './fetch-json.js';

export function discoveryUrl(issuer: string): URL {
  return new URL(issuer.replace(/\/+$/, '') + '/.well-known/openid-configuration');
}

export async function discoverJwksUri(issuer: string, opts: FetchJsonOptions): Promise<Result<URL>> {
  let url: URL;
  try {
    url = discoveryUrl(issuer);
  } catch {
    return err('discovery.issuer', 'issuer is not a URL');
  }
  const doc = await fetchJson(url, opts);
  if (!doc.ok) return err(doc.error.code, `discovery ${url.href}: ${doc.error.message}`);
  const body = doc.value as { issuer?: unknown; jwks_uri?: unknown } | null;
  if (!body || typeof body !== 'object') return err('discovery.invalid', `discovery ${url.href}: not an object`);
  if (body.issuer !== issuer) return err('discovery.issuer', `discovery ${url.href}: names issuer ${String(body.issuer)}, expected ${issuer}`);
  return parseHttpUrl(body.jwks_uri, `discovery ${url.href}: jwks_uri`);
}

export function parseHttpUrl(value: unknown, what: string): Result<URL> {
  if (typeof value !== 'string') return err('discovery.invalid', `${what} is missing`);
  try {
    const u = new URL(value);
    if (u.protocol !== 'https:' && u.protocol !== 'http:') return err('discovery.invalid', `${what} is not http(s)`);
    return ok(u);
  } catch {
    return err('discovery.invalid', `${what} is not a URL`);
  }
}
