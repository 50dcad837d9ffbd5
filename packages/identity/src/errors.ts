/**
 * The error codes of caller authentication, and the translation of jose's exceptions
 * into them. Messages are shown to the caller, so they name the problem, never the token.
 */
import { errors as jose } from 'jose';
import { err, type Result } from '@gatehouse/core';

export type AuthErrorCode =
  | 'auth.missing'
  | 'auth.malformed'
  | 'auth.expired'
  | 'auth.not_yet_valid'
  | 'auth.audience'
  | 'auth.issuer'
  | 'auth.signature'
  | 'auth.algorithm'
  | 'auth.unknown_key'
  | 'auth.jwks_unavailable'
  | 'auth.invalid'
  /** A verified client certificate that maps to no identity, or to several. */
  | 'auth.certificate'
  /** An SSH key bound to no identity, or a certificate refused (CA, type, principals, options). */
  | 'auth.ssh_key';

export const fail = (code: AuthErrorCode, message: string): Result<never> => err(code, message);

/** Thrown by the key resolver when no usable key set is at hand (fetch failed, cooling down). */
export class JwksUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JwksUnavailableError';
  }
}

/** Map whatever jwtVerify threw to a code and a caller-safe message. */
export function fromVerifyError(e: unknown): Result<never> {
  if (e instanceof JwksUnavailableError) return fail('auth.jwks_unavailable', 'signing keys of the issuer are unavailable; try again later');
  if (e instanceof jose.JWTExpired) return fail('auth.expired', 'token has expired');
  if (e instanceof jose.JWTClaimValidationFailed) {
    if (e.reason === 'missing') return fail('auth.invalid', `token lacks the required "${e.claim}" claim`);
    switch (e.claim) {
      case 'nbf':
        return fail('auth.not_yet_valid', 'token is not yet valid (nbf)');
      case 'aud':
        return fail('auth.audience', 'token is not meant for this gateway (audience)');
      case 'iss':
        return fail('auth.issuer', 'token issuer is not trusted');
      default:
        return fail('auth.invalid', `token claim "${e.claim}" is invalid`);
    }
  }
  if (e instanceof jose.JOSEAlgNotAllowed) return fail('auth.algorithm', 'token signing algorithm is not allowed');
  if (e instanceof jose.JWSSignatureVerificationFailed) return fail('auth.signature', 'token signature is invalid');
  if (e instanceof jose.JWKSNoMatchingKey) return fail('auth.unknown_key', 'token was signed with a key the issuer does not publish');
  // Several keys match (no kid): jose tries each; if none verifies, that is a bad signature.
  if (e instanceof jose.JWKSMultipleMatchingKeys) return fail('auth.signature', 'token signature is invalid');
  if (e instanceof jose.JWSInvalid || e instanceof jose.JWTInvalid) return fail('auth.malformed', 'token is not a well-formed JWT');
  if (e instanceof jose.JOSENotSupported) return fail('auth.algorithm', 'token uses an unsupported algorithm or key type');
  return fail('auth.invalid', 'token could not be verified');
}
