/**
 * A private nginx (Debian's nginx-light) for tests and the benchmark: its own prefix and
 * config in a temp dir, on a free port, in the foreground, stopped by pid. Used as a
 * "third-party-shaped" upstream API and, in the benchmark, as the reference reverse proxy.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../lib/net.js';

export interface Nginx {
  port: number;
  url: string;
  dir: string;
  stop(): Promise<void>;
}

/**
 * Starts nginx with `serverBlock` (the body of one `server { }`, may use `$PORT` and `$DIR`),
 * the static `files` (path under the doc root → content) and `httpBlock` (http-level directives).
 */
export async function startNginx(serverBlock: string, files: Record<string, string | Buffer> = {}, workers = 1, httpBlock = ''): Promise<Nginx> {
  const dir = mkdtempSync(join(tmpdir(), 'gh-nginx-'));
  // mkdtemp makes the dir 0700; nginx workers (user nobody when started as root) must read the doc root.
  chmodSync(dir, 0o755);
  const root = join(dir, 'root');
  mkdirSync(root);
  for (const [p, content] of Object.entries(files)) {
    mkdirSync(join(root, p, '..'), { recursive: true });
    writeFileSync(join(root, p), content);
  }
  const port = await freePort();
  const conf = `
worker_processes ${workers};
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
daemon off;
events { worker_connections 1024; }
http {
  include /etc/nginx/mime.types;
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_requests 1000000;
  ${httpBlock}
  server {
    listen 127.0.0.1:${port};
    root ${root};
    ${serverBlock.replaceAll('$PORT', String(port)).replaceAll('$DIR', dir)}
  }
}`;
  writeFileSync(join(dir, 'nginx.conf'), conf);
  const child: ChildProcess = spawn('nginx', ['-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (c) => (stderr += c));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  // Ready when the port accepts connections (bounded wait).
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nginx exited: ${stderr}`);
    const up = await new Promise<boolean>((r) => {
      const s = connect(port, '127.0.0.1', () => {
        s.destroy();
        r(true);
      });
      s.on('error', () => r(false));
    });
    if (up) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`nginx did not start: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    dir,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGQUIT');
        const t = setTimeout(() => child.kill('SIGKILL'), 3_000);
        await exited;
        clearTimeout(t);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
