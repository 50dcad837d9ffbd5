/**
 * verifyLog off the agent's event loop: a full pass over a large log takes seconds to
 * minutes, during which metrics must still answer and sinks keep shipping.
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { verifyLog, type VerifyOptions, type VerifyReport } from '@gatehouse/audit';

interface Job {
  dataDir: string;
  opts: VerifyOptions;
}

/** Runs verifyLog(dataDir, opts) in a worker thread; a worker that dies is an error, never a success. `signal` terminates it. */
export function verifyInWorker(dataDir: string, opts: VerifyOptions, signal: AbortSignal): Promise<VerifyReport> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new Error('stopped'));
    const w = new Worker(new URL(import.meta.url), { workerData: { dataDir, opts } satisfies Job });
    const stop = () => void w.terminate();
    signal.addEventListener('abort', stop, { once: true });
    w.once('message', (r: VerifyReport) => resolve(r));
    w.once('error', reject);
    w.once('exit', (code) => {
      signal.removeEventListener('abort', stop);
      reject(new Error(signal.aborted ? 'stopped' : `verification worker exited with code ${code}`));
    });
  });
}

if (!isMainThread && parentPort) {
  const job = workerData as Job;
  parentPort.postMessage(verifyLog(job.dataDir, job.opts));
}
