/**
 * Interactive shells through the SSH connector: a pty (window changes reach the target),
 * signals and exit status / exit signal passed back, the terminal recorded as gzip asciicast
 * (output, resizes; input off), masking detectors over the recording (a card number split
 * across chunks), the recording's SHA-256 in the audit, the per-session size cap (truncated
 * and marked), `gatehouse replay`, and the real `ssh -tt` under tmux.
 */
import t from 'tap';
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import type { Client, ClientChannel } from 'ssh2';
import { sshAvailable, startSshd, type Sshd } from './env.js';
import { eventually, ssh2Connect, ssh2Exec, startSshGateway, type SshGateway } from './harness.js';

const run = promisify(execFile);
const GATEHOUSE = join(process.cwd(), '..', 'gateway', 'bin', 'gatehouse.js');
const gatehouseBin = existsSync(GATEHOUSE) ? GATEHOUSE : join(process.cwd(), 'gateway', 'bin', 'gatehouse.js');

/** A shell on `c` with a pty; `until(text)` waits for the output to contain text. */
function shell(
  c: Client,
): Promise<{ ch: ClientChannel; out: () => string; until: (s: string | RegExp) => Promise<void>; exit: Promise<{ code: number | null; signal?: string }> }> {
  return new Promise((resolve, reject) => {
    c.shell({ rows: 24, cols: 80, term: 'xterm' }, (e, ch) => {
      if (e) return reject(e);
      let out = '';
      ch.on('data', (d: Buffer) => (out += d.toString()));
      const exit = new Promise<{ code: number | null; signal?: string }>((r) => {
        let code: number | null = null;
        let signal: string | undefined;
        ch.on('exit', (c2: number | null, s?: string) => ((code = c2), (signal = s)));
        ch.on('close', () => r({ code, ...(signal ? { signal } : {}) }));
      });
      const until = async (s: string | RegExp) => {
        const end = Date.now() + 10_000;
        while (!(typeof s === 'string' ? out.includes(s) : s.test(out))) {
          if (Date.now() > end) throw new Error(`no ${s} in output: ${JSON.stringify(out.slice(-500))}`);
          await new Promise((r) => setTimeout(r, 20));
        }
      };
      resolve({ ch, out: () => out, until, exit });
    });
  });
}

function cast(file: string): { header: Record<string, unknown>; events: [number, string, string][] } {
  const lines = gunzipSync(readFileSync(file)).toString('utf8').split('\n').filter(Boolean);
  return { header: JSON.parse(lines[0]) as Record<string, unknown>, events: lines.slice(1).map((l) => JSON.parse(l) as [number, string, string]) };
}

const missing = sshAvailable();
if (missing) {
  t.pass(`skipped: ${missing}`);
} else {
  let sshd: Sshd;
  let g: SshGateway;
  t.before(async () => {
    sshd = await startSshd();
    g = await startSshGateway(sshd, {
      rules: `      - { name: no-rm, match: { command: ["rm -rf *"] }, action: deny }`,
      masking: `    masking:\n      - { detectors: [credit_card], with: last4 }`,
    });
  });
  t.teardown(async () => {
    await g?.stop();
    await sshd?.stop();
  });
  const key = () => readFileSync(g.caller.path);

  t.test('a shell with a pty: window changes, exit status, recording with its hash in the audit', async (t) => {
    const c = await ssh2Connect(g, { privateKey: key() });
    t.teardown(() => c.end());
    const s = await shell(c);
    s.ch.write('stty size; echo "term=$TERM"\n');
    await s.until('24 80');
    await s.until('term=xterm');
    s.ch.setWindow(40, 100, 0, 0);
    await new Promise((r) => setTimeout(r, 200));
    s.ch.write('stty size\n');
    await s.until('40 100');
    // A card number printed in two pieces, a moment apart: the recording must mask it.
    s.ch.write("printf '4111 1111'; sleep 0.4; printf ' 1111 1111\\n'\n");
    await s.until('4111 1111 1111 1111');
    s.ch.write('exit 7\n');
    const exit = await s.exit;
    t.equal(exit.code, 7);
    const unit = await eventually(() => g.events('unit').find((e) => e.unit?.text === 'shell' && (e.unit.attributes as { recording?: unknown }).recording));
    const rec = (unit.unit!.attributes as { recording: { file: string; sha256: string; truncated: boolean; bytes: number } }).recording;
    t.match(unit, {
      decision: { action: 'allow' },
      result: { status: 7 },
      unit: { attributes: { channel: 'shell', pty: { term: 'xterm', cols: 80, rows: 24 }, exit: { code: 7 } } },
    });
    const file = join(g.tg.dataDir, 'recordings', rec.file);
    const bytes = readFileSync(file);
    t.equal(createHash('sha256').update(bytes).digest('hex'), rec.sha256, 'the audit commits to the recording as stored');
    t.equal(bytes.length, rec.bytes);
    t.equal(rec.truncated, false);
    const { header, events } = cast(file);
    t.match(header, { version: 2, width: 80, height: 24, gatehouse: { session: unit.session, kind: 'shell', subject: 'svc:deploy' } });
    const output = events
      .filter((e) => e[1] === 'o')
      .map((e) => e[2])
      .join('');
    t.match(output, /40 100/);
    t.ok(
      events.some((e) => e[1] === 'r' && e[2] === '100x40'),
      'the resize is recorded',
    );
    t.notOk(
      events.some((e) => e[1] === 'i'),
      'input is not recorded by default',
    );
    t.notMatch(output, /4111 1111 1111 1111/, 'no clear card number in the recording');
    t.match(output, /1111/, 'the masked value (last4) is there');
    t.notOk(readFileSync(file).includes('4111 1111 1111 1111'));
    // Event times are ordered.
    for (let i = 1; i < events.length; i++) t.ok(events[i][0] >= events[i - 1][0] || events[i][1] !== events[i - 1][1], 'ordered');

    // gatehouse replay plays it (instantly).
    const cfg = join(g.dir, 'replay.yaml');
    writeFileSync(cfg, `data_dir: ${JSON.stringify(g.tg.dataDir)}\n`);
    const r = await run(process.execPath, [gatehouseBin, 'replay', '-c', cfg, unit.session, '--instant']);
    t.match(r.stdout, /40 100/);
    t.match(r.stdout, /terminal .*\.cast\.gz/);
    const direct = await run(process.execPath, [gatehouseBin, 'replay', file, '--speed', '1000']);
    t.match(direct.stdout, /term=xterm/);
    // Debian's asciinema plays the same recording, once decompressed (make test installs it).
    const plain = join(g.dir, 'shell.cast');
    writeFileSync(plain, gunzipSync(bytes));
    // asciinema cat reads its controlling terminal: give it one with script(1).
    const played = await run('script', ['-qec', `asciinema cat ${plain}`, '/dev/null']);
    t.match(played.stdout, /40 100/, 'asciinema cat prints the recorded output');
    t.notMatch(played.stdout, /4111 1111 1111 1111/);
  });

  t.test('signals reach the target; exit signal comes back; exec with a pty', async (t) => {
    const c = await ssh2Connect(g, { privateKey: key() });
    const tty = await ssh2Exec(c, 'tty; echo done', { pty: true });
    t.match(tty.stdout, /\/dev\/pts\//);
    // sshd passes signals only to privilege-separated sessions (a non-root login).
    if (!sshd.privsep) {
      c.end();
      return;
    }
    t.teardown(() => c.end());
    const ch = await new Promise<ClientChannel>((resolve, reject) => c.exec('sleep 30', (e, x) => (e ? reject(e) : resolve(x))));
    const exit = new Promise<{ code: number | null; signal?: string }>((r) => ch.on('exit', (code: number | null, signal?: string) => r({ code, ...(signal ? { signal } : {}) })));
    ch.on('data', () => {});
    await new Promise((r) => setTimeout(r, 300));
    ch.signal('KILL');
    const ex = await exit;
    t.same(ex, { code: null, signal: 'SIGKILL' }, 'ssh2 names it SIGKILL');
    const unit = await eventually(() => g.events('unit').find((e) => e.unit?.text === 'sleep 30'));
    t.match(unit, { result: { status: 'signal KILL' }, unit: { attributes: { exit: { signal: 'KILL' } } } });
    c.end();
  });

  // tmux is installed by `make test` (scripts/ensure-system-deps.sh): no skip, a missing tmux fails.
  t.test('the real ssh client with a pty under tmux', async (t) => {
    const name = `gh-ssh-${process.pid}`;
    const cmd = ['ssh', ...g.opts(), '-tt', 'deploy@127.0.0.1'].map((a) => `'${a}'`).join(' ');
    await run('tmux', ['new-session', '-d', '-s', name, '-x', '120', '-y', '30', cmd]);
    t.teardown(() => run('tmux', ['kill-session', '-t', name]).catch(() => {}));
    const screen = async () => (await run('tmux', ['capture-pane', '-p', '-t', name])).stdout;
    const wait = async (re: RegExp) => {
      const end = Date.now() + 10_000;
      for (;;) {
        const s = await screen();
        if (re.test(s)) return s;
        if (Date.now() > end) throw new Error(`screen lacks ${re}: ${s}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    await run('tmux', ['send-keys', '-t', name, 'stty size; echo marker-$((6*7))', 'Enter']);
    await wait(/marker-42/);
    t.match(await screen(), /30 120/, 'the pty has the size of the tmux window');
    await run('tmux', ['resize-window', '-t', name, '-x', '100', '-y', '25']).catch(() => {});
    await run('tmux', ['send-keys', '-t', name, 'stty size', 'Enter']);
    await wait(/25 100/);
    await run('tmux', ['send-keys', '-t', name, 'exit', 'Enter']);
    const unit = await eventually(
      () =>
        g
          .events('unit')
          .reverse()
          .find((e) => e.unit?.text === 'shell' && (e.unit.attributes as { pty?: { cols?: number } }).pty?.cols === 120),
      10_000,
    );
    t.ok(unit);
  });
}
