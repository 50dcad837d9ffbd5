/** @gatehouse/identity — caller authentication: OIDC / JWKS (jose), Kubernetes service accounts, static dev tokens, mTLS certificates, SSH keys and OpenSSH certificates. */
export { createAuthenticator, type AuthenticatorOptions, type IdentityConfig, type TokenAuthenticator } from './authenticator.js';
export { roleOf, type Role } from './roles.js';
export type { AuthErrorCode } from './errors.js';
export { readClaimPath, groupsFrom } from './claim-path.js';
export { ASYMMETRIC_ALGORITHMS } from './oidc-issuer.js';
export { CertificateIdentities, MTLS_ISSUER } from './certificates.js';
export { SshKeyIdentities, SSH_KEY_ISSUER, SSH_CERT_ISSUER, HONOURED_CRITICAL_OPTIONS, sourceAllowed } from './ssh-identities.js';
export {
  parseCertificate,
  parsePublicKeyBlob,
  parsePublicKeyLine,
  sshFingerprint,
  verifySshSignature,
  SshWireError,
  WireReader,
  type OpenSshCertificate,
  type SshPublicKey,
} from './ssh-wire.js';
