/**
 * Durability is ordering: under `strict`, append() may resolve only after the event's WAL
 * frames were written AND a sync of the WAL completed after them (decision 0105). Checked on
 * the real system calls with strace (make test installs it).
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WalSync } from '../src/wal-sync.js';
import { tempDir } from './helpers.js';

const child = fileURLToPath(new URL('./fixtures/append-then-mark.js', import.meta.url));

interface Ordering {
  resolved: number;
  /** Seqs that resolved before a completed WAL sync followed the first WAL write holding them. */
  early: number[];
}

/**
 * Reads an `strace -f -y -s 8192` trace. Event seq n carries `-- <n-1>` in its text (the
 * fixture's events), so the first `pwrite64` to the WAL whose data holds it is when the event
 * reached the file; the event is durable once a WAL sync that started after that write has
 * completed. A `RESOLVED n` line before that point is early.
 */
function ordering(trace: string): Ordering {
  const lines = trace.split('\n');
  const firstWrite = new Map<number, number>();
  const syncs: number[] = []; // line numbers of completed WAL syncs
  const resolvedAt = new Map<number, number>();
  const pendingSync = new Map<string, boolean>(); // tid → its unfinished sync is of the WAL
  lines.forEach((line, at) => {
    const tid = line.split(' ', 1)[0];
    if (/pwrite64\(\d+<[^>]*audit\.db-wal>/.test(line)) {
      for (const m of line.matchAll(/-- (\d+)\\"/g)) {
        const seq = Number(m[1]) + 1;
        if (!firstWrite.has(seq)) firstWrite.set(seq, at);
      }
    }
    const sync = /(fdatasync|fsync)\(\d+<([^>]*)>/.exec(line);
    if (sync) {
      const wal = sync[2].endsWith('audit.db-wal');
      if (line.includes('<unfinished ...>')) pendingSync.set(tid, wal);
      else if (wal && / = 0$/.test(line)) syncs.push(at);
    } else if (/<\.\.\. (fdatasync|fsync) resumed>/.test(line)) {
      if (pendingSync.get(tid) && / = 0$/.test(line)) syncs.push(at);
      pendingSync.delete(tid);
    }
    const r = /write\(2<[^>]*>, "RESOLVED (\d+)\\n"/.exec(line);
    if (r) resolvedAt.set(Number(r[1]), at);
  });
  const early: number[] = [];
  for (const [seq, at] of resolvedAt) {
    const w = firstWrite.get(seq);
    // An unfinished sync that started before the write cannot count: only syncs completed after it.
    if (w === undefined || w > at || !syncs.some((s) => s > w && s < at)) early.push(seq);
  }
  return { resolved: resolvedAt.size, early };
}

function traced(t: { teardown(fn: () => unknown): void }, durability: 'strict' | 'batched', n: number): Ordering {
  const dir = tempDir(t);
  const out = join(dir, 'trace.txt');
  execFileSync('strace', ['-f', '-y', '-s', '8192', '-e', 'trace=pwrite64,fdatasync,fsync,write', '-o', out, process.execPath, child, join(dir, 'data'), durability, String(n)], {
    stdio: ['ignore', 'ignore', 'pipe'],
    timeout: 60_000,
  });
  return ordering(readFileSync(out, 'utf8'));
}

t.test('strict: every append resolves after a WAL sync that followed its write', async (t) => {
  const r = traced(t, 'strict', 20);
  t.equal(r.resolved, 20, 'all 20 resolutions traced');
  t.same(r.early, [], 'no resolution before its WAL frames were synced');
});

t.test('batched resolves on acceptance, before the sync: the check above can fail', async (t) => {
  const r = traced(t, 'batched', 20);
  t.equal(r.resolved, 20);
  t.ok(r.early.length >= 10, `batched appends resolved before their sync (${r.early.length} of 20)`);
});

t.test('WalSync syncs the WAL after each commit and only then releases what it promised', async (t) => {
  const dir = tempDir(t);
  mkdirSync(dir, { recursive: true });
  const wal = join(dir, 'x-wal');
  const released: number[][] = [];
  const failures: Error[] = [];
  const durable: number[] = [];
  const s = new WalSync<number>(
    wal,
    (items) => released.push(items),
    (e) => failures.push(e),
    (seq) => durable.push(seq),
  );
  s.committed(1, [1], 1);
  t.same(released, [[1]], 'no WAL yet (nothing was written to one): nothing to sync, released');
  execFileSync('sh', ['-c', `printf frames > ${wal}`]);
  s.committed(2, [2, 3], 3);
  t.same(released, [[1], [2, 3]], 'released in commit order, each after its own sync');
  t.same(durable, [1, 3], 'each sync marks the highest seq it covered durable');
  s.committed(0, [], 3);
  t.same(durable, [1, 3], 'a commit with no new events moves no mark');
  t.equal(released.length, 2, 'and releases nothing when it promised nothing');
  const stats = s.takeStats();
  t.equal(stats.commits, 3);
  t.equal(stats.events, 3);
  t.equal(stats.syncs, 2, 'one fdatasync per commit once the WAL exists');
  t.equal(stats.latencies.length, 2);
  t.same(s.takeStats().commits, 0, 'stats reset once taken');
  t.same(failures, []);
  s.close();
});

t.test('a sync that fails is reported, and nothing it covered is released', async (t) => {
  // /dev/null cannot be synced (EINVAL): the disk promise cannot be kept.
  t.ok(existsSync('/dev/null'));
  const released: number[][] = [];
  const failures: Error[] = [];
  const durable: number[] = [];
  const s = new WalSync<number>(
    '/dev/null',
    (items) => released.push(items),
    (e) => failures.push(e),
    (seq) => durable.push(seq),
  );
  s.committed(1, [1], 1);
  t.equal(failures.length, 1, 'failure reported');
  t.match(failures[0], { code: 'EINVAL' });
  t.same(released, [], 'nothing released');
  t.same(durable, [], 'nothing marked durable');
  s.close();
});
