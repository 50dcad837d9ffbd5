/**
 * File transfers through the SSH connector with the real clients: `scp -O` (the legacy scp
 * protocol: an exec of `scp -t` / `scp -f`), `scp` in its default SFTP mode and `sftp`, each
 * way with 50 MB of random data; the checksums at both ends equal the SHA-256 in the audit;
 * `path` rules refuse a file (sftp: permission denied; scp: the transfer stops).
 */
import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync, existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { runClient, sshAvailable, startSshd, type Sshd } from './env.js';
import { eventually, startSshGateway, type SshGateway } from './harness.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const SIZE = 50 * 1024 * 1024;

interface Transfer {
  path: string;
  direction: string;
  sha256: string;
  size?: number;
  bytes?: number;
  bytes_read?: number;
  bytes_written?: number;
  complete: boolean;
}

const missing = sshAvailable();
if (missing) {
  t.pass(`skipped: ${missing}`);
} else {
  let sshd: Sshd;
  let g: SshGateway;
  let data: Buffer;
  let local: string;
  t.before(async () => {
    sshd = await startSshd();
    g = await startSshGateway(sshd, {
      rules: `      - { name: no-secrets, match: { path: ["**/secret*", "/etc/**"] }, action: deny }`,
    });
    data = randomBytes(SIZE);
    local = join(g.dir, 'payload.bin');
    writeFileSync(local, data);
  });
  t.teardown(async () => {
    await g?.stop();
    await sshd?.stop();
  });

  const transfers = (): Transfer[] =>
    g
      .events('unit')
      .map((e) => (e.unit?.attributes as { transfer?: Transfer } | undefined)?.transfer)
      .filter((x): x is Transfer => x !== undefined);

  t.test('scp -O (legacy protocol) upload and download: equal checksums, audited per file', async (t) => {
    const remote = join(sshd.work, 'scp-up.bin');
    const up = await runClient('scp', ['-O', ...g.opts().map((a) => (a === '-p' ? '-P' : a)), local, `deploy@127.0.0.1:${remote}`]);
    t.equal(up.code, 0, up.stderr);
    t.equal(sha256(readFileSync(remote)), sha256(data), 'the target has the same bytes');
    const upT = await eventually(() => transfers().find((x) => x.path === remote && x.direction === 'upload'));
    t.match(upT, { sha256: sha256(data), size: SIZE, bytes: SIZE, complete: true });
    const back = join(g.dir, 'scp-down.bin');
    const down = await runClient('scp', ['-O', ...g.opts().map((a) => (a === '-p' ? '-P' : a)), `deploy@127.0.0.1:${remote}`, back]);
    t.equal(down.code, 0, down.stderr);
    t.equal(sha256(readFileSync(back)), sha256(data));
    const downT = await eventually(() => transfers().find((x) => x.path === remote && x.direction === 'download'));
    t.match(downT, { sha256: sha256(data), size: SIZE, complete: true });
    const exec = g.events('unit').find((e) => e.unit?.text.startsWith('scp -t'));
    t.match(exec, { unit: { attributes: { channel: 'scp', path: remote, transfers: 1 } }, result: { status: 0 } });
  });

  t.test('sftp put and get, and scp in its default (SFTP) mode: equal checksums, audited per file', async (t) => {
    const remote = join(sshd.work, 'sftp-up.bin');
    const back = join(g.dir, 'sftp-down.bin');
    const batch = join(g.dir, 'batch');
    writeFileSync(batch, `put ${local} ${remote}\nget ${remote} ${back}\n`);
    const r = await runClient('sftp', [...g.opts().map((a) => (a === '-p' ? '-P' : a)), '-b', batch, 'deploy@127.0.0.1']);
    t.equal(r.code, 0, r.stderr);
    t.equal(sha256(readFileSync(remote)), sha256(data));
    t.equal(sha256(readFileSync(back)), sha256(data));
    const put = await eventually(() => transfers().find((x) => x.path === remote && x.direction === 'upload'));
    t.match(put, { sha256: sha256(data), bytes_written: SIZE, complete: true });
    const get = await eventually(() => transfers().find((x) => x.path === remote && x.direction === 'download'));
    t.match(get, { sha256: sha256(data), bytes_read: SIZE, complete: true });
    const remote2 = join(sshd.work, 'scp-sftp-mode.bin');
    const s = await runClient('scp', [...g.opts().map((a) => (a === '-p' ? '-P' : a)), local, `deploy@127.0.0.1:${remote2}`]);
    t.equal(s.code, 0, s.stderr);
    t.equal(sha256(readFileSync(remote2)), sha256(data));
    t.ok(await eventually(() => transfers().find((x) => x.path === remote2 && x.sha256 === sha256(data))));
    const sub = g.events('unit').find((e) => e.unit?.text === 'subsystem sftp');
    t.match(sub, { unit: { attributes: { channel: 'sftp', sftp: { bytes_to_target: Number } } } });
  });

  t.test('path rules: sftp answers permission denied and the session goes on; scp stops', async (t) => {
    const secret = join(sshd.work, 'secret.txt');
    const batch = join(g.dir, 'batch2');
    writeFileSync(batch, `-put ${local} ${secret}\nget /etc/hostname ${join(g.dir, 'h')}\nls ${sshd.work}\n`);
    const r = await runClient('sftp', [...g.opts().map((a) => (a === '-p' ? '-P' : a)), '-b', batch, 'deploy@127.0.0.1']);
    t.match(r.stderr, /Permission denied|denied by rule/);
    t.notOk(existsSync(secret), 'the refused file was never written');
    t.notOk(existsSync(join(g.dir, 'h')), 'the refused read never happened');
    const refused = await eventually(() => g.events('unit').filter((e) => e.decision?.rule === 'no-secrets'));
    t.ok(refused.some((e) => e.unit?.text === `sftp write ${secret}`));
    const scp = await runClient('scp', ['-O', ...g.opts().map((a) => (a === '-p' ? '-P' : a)), local, `deploy@127.0.0.1:${secret}`]);
    t.not(scp.code, 0);
    t.match(scp.stderr, /denied by rule "no-secrets"/);
    t.notOk(existsSync(secret));
    // A directory upload with a refused file inside it.
    const dir = join(g.dir, 'tree');
    rmSync(dir, { recursive: true, force: true });
    (await import('node:fs')).mkdirSync(dir);
    writeFileSync(join(dir, 'a.txt'), 'a');
    writeFileSync(join(dir, 'secret.key'), 'k');
    const tree = await runClient('scp', ['-O', '-r', ...g.opts().map((a) => (a === '-p' ? '-P' : a)), dir, `deploy@127.0.0.1:${sshd.work}/`]);
    t.not(tree.code, 0);
    t.notOk(existsSync(join(sshd.work, 'tree', 'secret.key')));
  });
}
