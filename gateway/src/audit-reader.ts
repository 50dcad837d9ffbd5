/**
 * Reads the audit store for the admin API off the event loop that serves connections:
 * SQLite reads are synchronous, so they run in this worker and answer by message.
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { readEvents, readLatestCheckpoint, type EventFilter } from '@gatehouse/audit';
import { readRecording } from '@gatehouse/recording';

type Op = { op: 'events'; filter: EventFilter } | { op: 'checkpoint' } | { op: 'recording'; session: string };

interface Request {
  id: number;
  req: Op;
}

function serve(dataDir: string, req: Op): unknown {
  switch (req.op) {
    case 'events':
      return readEvents(dataDir, req.filter);
    case 'checkpoint':
      return readLatestCheckpoint(dataDir);
    case 'recording':
      try {
        return readRecording(dataDir, req.session);
      } catch {
        return null;
      }
  }
}

const role = workerData as { role?: string; dataDir: string } | null;
if (!isMainThread && role?.role === 'audit-reader') {
  const dataDir = role.dataDir;
  parentPort!.on('message', ({ id, req }: Request) => {
    try {
      parentPort!.postMessage({ id, ok: true, value: serve(dataDir, req) });
    } catch (e) {
      parentPort!.postMessage({ id, ok: false, error: (e as Error).message });
    }
  });
}

export interface AuditReader {
  events(filter: EventFilter): Promise<unknown[]>;
  checkpoint(): Promise<string | null>;
  recording(session: string): Promise<unknown>;
  close(): Promise<void>;
}

/** One reader worker per gateway; each call has a deadline so the API never hangs. */
export function startAuditReader(dataDir: string, timeoutMs = 10_000): AuditReader {
  const worker = new Worker(fileURLToPath(import.meta.url), { workerData: { role: 'audit-reader', dataDir } });
  worker.unref();
  let next = 0;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  worker.on('message', (m: { id: number; ok: boolean; value?: unknown; error?: string }) => {
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    clearTimeout(p.timer);
    if (m.ok) p.resolve(m.value);
    else p.reject(new Error(m.error));
  });
  worker.on('error', (e) => {
    for (const p of pending.values()) p.reject(e);
    pending.clear();
  });
  const call = (req: Op) =>
    new Promise<unknown>((resolve, reject) => {
      const id = ++next;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error('audit read timed out'));
      }, timeoutMs);
      pending.set(id, { resolve, reject, timer });
      worker.postMessage({ id, req });
    });
  return {
    events: (filter) => call({ op: 'events', filter }) as Promise<unknown[]>,
    checkpoint: () => call({ op: 'checkpoint' }) as Promise<string | null>,
    recording: (session) => call({ op: 'recording', session }),
    close: async () => {
      await worker.terminate();
    },
  };
}
