/**
 * The console's browser assets, read into memory once at start: the hand-written files of
 * gateway/ui (found next to the compiled code, so a clean clone works after `tsc -b`) and
 * asciinema-player's bundle as /ui/vendor/. Only files found at start are served: a request
 * path is a map key, never joined to a directory, so no path can reach outside.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};
const MAX_ASSET = 2 * 1024 * 1024;

/** gateway/ui from gateway/dist/src/console/static.js. */
export const UI_DIR = fileURLToPath(new URL('../../../ui/', import.meta.url));

const VENDOR: Record<string, string> = {
  'asciinema-player.min.js': 'asciinema-player/dist/bundle/asciinema-player.min.js',
  'asciinema-player.css': 'asciinema-player/dist/bundle/asciinema-player.css',
};

function asset(file: string): Asset | null {
  const dot = file.lastIndexOf('.');
  const type = TYPES[file.slice(dot)];
  if (!type || statSync(file).size > MAX_ASSET) return null;
  const body = readFileSync(file);
  return { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` };
}

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    if (name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else out.push(p);
  }
  return out;
}

/** URL path (under /ui/) → asset. Throws at start when the UI or the player is missing. */
export function loadAssets(uiDir = UI_DIR): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  for (const file of walk(uiDir)) {
    const a = asset(file);
    if (a) assets.set('/ui/' + relative(uiDir, file).split(sep).join('/'), a);
  }
  if (!assets.has('/ui/index.html')) throw new Error(`console: no index.html in ${uiDir}`);
  for (const [name, spec] of Object.entries(VENDOR)) {
    const a = asset(fileURLToPath(import.meta.resolve(spec)));
    if (!a) throw new Error(`console: cannot serve ${spec}`);
    assets.set(`/ui/vendor/${name}`, a);
  }
  return assets;
}
