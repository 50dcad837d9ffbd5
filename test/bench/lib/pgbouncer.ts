/** pgbouncer (session mode) in front of a local database: the C peer of the PostgreSQL connector. */
import { spawn } from 'node:child_process';
import { chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitTcp } from '../../lib/net.js';
import { sleep } from './proc.js';
import type { ProxyProcess } from './relay.js';

function postgresIds(): [number, number] {
  const f = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'))
    ?.split(':');
  return [Number(f?.[2]), Number(f?.[3])];
}

/** `db`: database and role on 127.0.0.1:`pgPort` (local trust, as the shared server allows). */
export async function startPgbouncer(db: { database: string; role: string }, pgPort = 5432): Promise<ProxyProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'gh-pgbouncer-'));
  const port = await freePort();
  writeFileSync(join(dir, 'userlist.txt'), `"${db.role}" ""\n`);
  writeFileSync(
    join(dir, 'pgbouncer.ini'),
    `[databases]\n${db.database} = host=127.0.0.1 port=${pgPort} dbname=${db.database} user=${db.role}\n` +
      `[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = ${port}\nauth_type = trust\nauth_file = ${dir}/userlist.txt\n` +
      `pool_mode = session\nmax_client_conn = 400\ndefault_pool_size = 200\nunix_socket_dir =\nlogfile = ${dir}/pgbouncer.log\n` +
      `pidfile = ${dir}/pgbouncer.pid\nignore_startup_parameters = extra_float_digits\n`,
  );
  const [uid, gid] = postgresIds();
  for (const f of ['', 'userlist.txt', 'pgbouncer.ini']) chownSync(join(dir, f), uid, gid);
  // pgbouncer refuses to run as root; its own pid is in its pidfile once it listens.
  const proc = spawn('runuser', ['-u', 'postgres', '--', 'pgbouncer', join(dir, 'pgbouncer.ini')], { stdio: 'ignore' });
  await waitTcp(port);
  let pid = NaN;
  for (let i = 0; i < 50 && !Number.isFinite(pid); i++, await sleep(50)) {
    try {
      pid = Number(readFileSync(join(dir, 'pgbouncer.pid'), 'utf8').trim()) || NaN;
    } catch {
      /* not written yet */
    }
  }
  return {
    port,
    pid: Number.isFinite(pid) ? pid : (proc.pid as number),
    async stop() {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        proc.kill('SIGTERM');
      }
      await sleep(200);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
