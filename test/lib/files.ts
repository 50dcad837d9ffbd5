/** What a test gateway left on disk: every file under a directory, for "no secret / clear value stored" checks. */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

export interface StoredFile {
  path: string;
  bytes: Buffer;
}

/** Every file under `dir`, recursively, with its bytes. */
export function filesUnder(dir: string): StoredFile[] {
  const out: StoredFile[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...filesUnder(p));
    else out.push({ path: p, bytes: readFileSync(p) });
  }
  return out;
}
