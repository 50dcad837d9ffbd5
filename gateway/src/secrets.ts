import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A random 32-byte key kept in data_dir (mode 0600), created on first start. Used where
 * a value must be stable across restarts but never derivable from outside (the masking
 * `hash` strategy's HMAC key).
 */
export function loadOrCreateSecret(dataDir: string, name: string): Buffer {
  const file = join(dataDir, name);
  try {
    const key = readFileSync(file);
    if (key.length === 32) return key;
    throw new Error(`${file} is not a 32-byte key`);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const key = randomBytes(32);
  writeFileSync(file, key, { mode: 0o600, flag: 'wx' });
  return key;
}
