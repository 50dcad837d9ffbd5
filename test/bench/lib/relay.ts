/**
 * The bare Node relay: `net` + `pipe`, nothing else, in its own process. It is the floor a
 * Node proxy can reach on this machine, so Gatehouse's cost is read against it.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { freePort, waitTcp } from '../../lib/net.js';

export interface ProxyProcess {
  port: number;
  /** The process whose tree's CPU is the proxy's. */
  pid: number;
  stop(): Promise<void>;
}

export async function startRelay(upstreamPort: number): Promise<ProxyProcess> {
  const port = await freePort();
  const code =
    `const net=require('net');net.createServer({noDelay:true},(c)=>{const u=net.connect(${upstreamPort},'127.0.0.1');u.setNoDelay(true);` +
    `c.pipe(u);u.pipe(c);c.on('error',()=>u.destroy());u.on('error',()=>c.destroy());}).listen(${port},'127.0.0.1');`;
  const proc = spawn(process.execPath, ['-e', code], { stdio: 'ignore' });
  await waitTcp(port);
  return {
    port,
    pid: proc.pid as number,
    async stop() {
      if (proc.exitCode !== null) return;
      proc.kill('SIGTERM');
      await once(proc, 'exit');
    },
  };
}
