/**
 * Route a presented token by its shape before any crypto: a JWT is three base64url
 * segments joined by dots; a static development token has no dot at all. Anything else
 * (JWE, stray whitespace, oversize) is rejected here, so the verifiers see clean input.
 */

/** Largest token accepted (Kubernetes service-account tokens are ~1–2 KiB). */
export const MAX_TOKEN_BYTES = 16 * 1024;

export type TokenShape = 'missing' | 'jwt' | 'static' | 'malformed';

// The signature segment may be empty only so that `alg: none` tokens reach the algorithm
// check and get the precise `auth.algorithm` answer.
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
const STATIC_SHAPE = /^[\x21-\x2d\x2f-\x7e]+$/; // printable ASCII without space and '.'

export function shapeOf(token: string | undefined | null): TokenShape {
  if (typeof token !== 'string' || token.length === 0) return 'missing';
  if (token.length > MAX_TOKEN_BYTES) return 'malformed';
  if (token.includes('.')) return JWT_SHAPE.test(token) ? 'jwt' : 'malformed';
  return STATIC_SHAPE.test(token) ? 'static' : 'malformed';
}
