/**
 * The checkpoint signing key: an Ed25519 key created in data_dir on first start
 * (PKCS#8 PEM, mode 0600), and its note verifier key in audit-key.pub for anyone to copy.
 * Called from the writer worker only (sync file I/O is fine off the main thread).
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { keyPath, pubPath } from './store.js';
import { verifierKeyString } from './note.js';

export interface SigningKey {
  name: string;
  privateKey: KeyObject;
  publicKey: Buffer;
  verifierKey: string;
}

export function loadOrCreateSigningKey(dataDir: string, name: string): SigningKey {
  const path = keyPath(dataDir);
  let privateKey: KeyObject;
  if (existsSync(path)) {
    privateKey = createPrivateKey(readFileSync(path));
    if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error(`${path} is not an Ed25519 key`);
  } else {
    privateKey = generateKeyPairSync('ed25519').privateKey;
    // 'wx': never overwrite a key another process created meanwhile.
    writeFileSync(path, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
  }
  const jwk = createPublicKey(privateKey).export({ format: 'jwk' });
  const publicKey = Buffer.from(jwk.x as string, 'base64url');
  const verifierKey = verifierKeyString(name, publicKey);
  const pub = pubPath(dataDir);
  if (!existsSync(pub) || readFileSync(pub, 'utf8').trim() !== verifierKey) writeFileSync(pub, verifierKey + '\n', { mode: 0o644 });
  return { name, privateKey, publicKey, verifierKey };
}
