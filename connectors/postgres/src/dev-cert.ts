/**
 * TLS material for the client-facing listener: the configured cert/key, or a self-signed
 * development certificate created once in `data_dir` (by the `openssl` CLI, which every
 * PostgreSQL host has; no native crypto dependency for something used only in development).
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  /** True when the development certificate is in use (logged as a warning). */
  development: boolean;
}

export async function loadTls(cfg: { cert?: string; key?: string } | undefined, dataDir: string, connector: string): Promise<TlsMaterial> {
  if (cfg?.cert && cfg.key) return { cert: await readFile(cfg.cert), key: await readFile(cfg.key), development: false };
  if (cfg?.cert || cfg?.key) throw new Error('tls: both cert and key are required');
  const dir = join(dataDir, 'tls');
  const certPath = join(dir, `${connector}-dev.crt`);
  const keyPath = join(dir, `${connector}-dev.key`);
  if (!(await exists(certPath)) || !(await exists(keyPath))) {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await run('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', keyPath, '-out', certPath, '-days', '825', '-subj', '/CN=gatehouse-dev',
      '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1',
    ], { timeout: 30_000 });
  }
  return { cert: await readFile(certPath), key: await readFile(keyPath), development: true };
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}
