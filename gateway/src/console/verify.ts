/**
 * The integrity page's verification: `verifyLog` re-hashes the whole log synchronously, so
 * it runs in a worker thread of its own (one at a time, with a deadline), and its report is
 * kept for a while — a page reload must not start a full pass each time.
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { verifyLog, type VerifyReport } from '@gatehouse/audit';

const role = workerData as { role?: string; dataDir: string } | null;
if (!isMainThread && role?.role === 'console-verify') {
  let report: VerifyReport;
  try {
    report = verifyLog(role.dataDir);
  } catch (e) {
    report = { ok: false, size: 0, root: '', checkpoints: 0, reason: (e as Error).message };
  }
  parentPort!.postMessage(report);
}

export interface Verification extends VerifyReport {
  /** When the pass finished (RFC 3339). */
  checkedAt: string;
}

export class Verifier {
  private last: Verification | null = null;
  private running: Promise<Verification> | null = null;

  constructor(
    private readonly dataDir: string,
    private readonly maxAgeMs = 30_000,
    private readonly timeoutMs = 60_000,
  ) {}

  /** The latest report, run anew when older than maxAgeMs (concurrent callers share one pass). */
  verify(): Promise<Verification> {
    if (this.last && Date.now() - Date.parse(this.last.checkedAt) < this.maxAgeMs) return Promise.resolve(this.last);
    this.running ??= this.run().finally(() => (this.running = null));
    return this.running;
  }

  private run(): Promise<Verification> {
    return new Promise((resolve) => {
      const worker = new Worker(fileURLToPath(import.meta.url), { workerData: { role: 'console-verify', dataDir: this.dataDir } });
      const done = (r: VerifyReport) => {
        clearTimeout(timer);
        void worker.terminate();
        const v = { ...r, checkedAt: new Date().toISOString() };
        if (r.ok) this.last = v;
        resolve(v);
      };
      const timer = setTimeout(() => done({ ok: false, size: 0, root: '', checkpoints: 0, reason: 'verification did not finish in time' }), this.timeoutMs);
      worker.once('message', done);
      worker.once('error', (e) => done({ ok: false, size: 0, root: '', checkpoints: 0, reason: e.message }));
    });
  }
}
