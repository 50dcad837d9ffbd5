/**
 * Fail closed on a real write error. The writer runs in a child process under
 * `ulimit -f` (RLIMIT_FSIZE): once the store's files reach the limit, write(2) fails with
 * EFBIG — to SQLite an I/O error, the path a full disk takes. The process lives on (SIGXFSZ
 * is ignored) and must refuse audited work. (chmod would not do: the tests run as root.)
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { verifyLog } from '../src/index.js';
import { tempDir } from './helpers.js';

const child = fileURLToPath(new URL('./fixtures/fill-disk.js', import.meta.url));

interface ChildReport {
  resolved: number;
  maxSeq: number;
  firstError: { code?: string; message: string } | null;
  later: string[];
  failure: { code: string; message: string } | null;
  errorLogs: string[];
}

function runLimited(dataDir: string, durability: string): Promise<ChildReport> {
  return new Promise((resolve, reject) => {
    // 8192 blocks: 4 MiB (dash counts 512-byte blocks) — room for the key and a few thousand events.
    const script = `ulimit -f 8192 && exec "${process.execPath}" "${child}" "${dataDir}" ${durability}`;
    // A clean environment: tap's NODE_OPTIONS (loaders, process-info files) must not
    // follow the child under the file-size limit.
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
    execFile('/bin/sh', ['-c', script], { env, timeout: 60_000, maxBuffer: 1 << 20 }, (e, stdout, stderr) => {
      if (e) return reject(new Error(`child failed (${String(e.code ?? e.signal)}): ${e.message}\n${stderr}`));
      try {
        resolve(JSON.parse(stdout) as ChildReport);
      } catch {
        reject(new Error(`child printed no report: ${stdout}\n${stderr}`));
      }
    });
  });
}

for (const durability of ['strict', 'batched']) {
  t.test(`${durability}: a write error fails the log closed, for good, logged once`, async (t) => {
    const dir = tempDir(t);
    const r = await runLimited(dir, durability);
    t.ok(r.resolved > 100, `some events were accepted before the limit (${r.resolved})`);
    t.equal(r.maxSeq, r.resolved, 'accepted events have consecutive seqs');
    t.match(r.firstError, { code: 'audit.unavailable' }, 'appends reject with audit.unavailable');
    t.same(r.later, ['audit.unavailable', 'audit.unavailable', 'audit.unavailable'], 'later appends keep failing');
    t.match(r.failure, { code: 'audit.unavailable', message: /audit store failed: SQLITE_/ });
    t.equal(r.errorLogs.length, 1, 'logged once');
    t.match(r.errorLogs[0], /AUDIT LOG UNAVAILABLE/);
    t.notMatch(r.errorLogs[0], /xxxxxxxx/, 'no event content in the log line');

    // What was committed is intact and verifiable offline.
    const v = verifyLog(dir);
    t.ok(v.ok, v.reason ?? 'committed prefix verifies');
    if (durability === 'strict') t.equal(v.size, r.resolved, 'strict: every resolved append is in the store');
    else t.ok(v.size <= r.resolved, 'batched: at most what was accepted');
  });
}
