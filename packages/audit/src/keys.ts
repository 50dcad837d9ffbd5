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

/**
 * The Ed25519 key in the PKCS#8 PEM file at `path`, created (mode 0600) on first use, and its
 * raw 32-byte public key. Also the agent's witness key.
 */
export function loadOrCreateEd25519(path: string): { privateKey: KeyObject; publicKey: Buffer } {
  let privateKey: KeyObject;
  if (existsSync(path)) {
    privateKey = createPrivateKey(readFileSync(path));
    if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error(`${path} is not an Ed25519 key`);
  } else {
    privateKey = generateKeyPairSync('ed25519').privateKey;
    // 'wx': never overwrite a key another process created meanwhile.
    writeFileSync(path, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
  }
  const publicKey = Buffer.from(createPublicKey(privateKey).export({ format: 'jwk' }).x as string, 'base64url');
  return { privateKey, publicKey };
}

export function loadOrCreateSigningKey(dataDir: string, name: string): SigningKey {
  const { privateKey, publicKey } = loadOrCreateEd25519(keyPath(dataDir));
  const verifierKey = verifierKeyString(name, publicKey);
  const pub = pubPath(dataDir);
  if (!existsSync(pub) || readFileSync(pub, 'utf8').trim() !== verifierKey) writeFileSync(pub, verifierKey + '\n', { mode: 0o644 });
  return { name, privateKey, publicKey, verifierKey };
}
