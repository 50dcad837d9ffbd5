/**
 * Session recordings: one JSON-lines file per session under `<data_dir>/recordings/`.
 * The first line is a header; every further line is a TimelineEntry. Writes go through
 * an fs.WriteStream (the event loop never waits on disk); a recording is capped so a
 * chatty session cannot fill the disk, and the cap is noted in the file.
 */
import { createWriteStream, mkdirSync, readFileSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import type { Logger, Recorder, SessionRecording, TimelineEntry } from '@gatehouse/core';

export interface RecorderOptions {
  dataDir: string;
  /** Largest recording in bytes; later entries are dropped and a truncation marker written. */
  maxBytes?: number;
  logger?: Logger;
}

export interface Recording {
  header: Record<string, unknown>;
  entries: TimelineEntry[];
}

const SESSION_ID = /^[0-9a-f-]{36}$/;
const FLUSH_MS = 100;
const FLUSH_BYTES = 64 * 1024;

export function recordingPath(dataDir: string, sessionId: string): string {
  if (!SESSION_ID.test(sessionId)) throw new Error(`not a session id: ${sessionId}`);
  return join(dataDir, 'recordings', `${sessionId}.jsonl`);
}

export function createRecorder(opts: RecorderOptions): Recorder {
  const dir = join(opts.dataDir, 'recordings');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const maxBytes = opts.maxBytes ?? 64 * 1024 * 1024;
  return {
    open(sessionId, header) {
      return new FileRecording(recordingPath(opts.dataDir, sessionId), { v: 1, session: sessionId, ...header }, maxBytes, opts.logger);
    },
  };
}

class FileRecording implements SessionRecording {
  private readonly out: WriteStream;
  private written = 0;
  private truncated = false;
  private closed = false;
  /**
   * Lines not yet handed to the stream. Flushed every FLUSH_MS or at FLUSH_BYTES: each
   * stream write costs a thread-pool hop and a syscall, too much to pay per statement.
   * Up to FLUSH_MS of timeline may be lost in a crash; the audit log is the record of truth.
   */
  private pending = '';
  private flushScheduled = false;
  private readonly flush = () => {
    this.flushScheduled = false;
    if (this.pending) this.out.write(this.pending);
    this.pending = '';
  };

  constructor(
    path: string,
    header: Record<string, unknown>,
    private readonly maxBytes: number,
    logger?: Logger,
  ) {
    this.out = createWriteStream(path, { flags: 'wx', mode: 0o600 });
    // A failed recording must not take the session down: the audit log is the
    // record of truth; the recording is for replay.
    this.out.on('error', (e) => logger?.error({ err: e.message, path }, 'recording write failed'));
    this.write(header);
  }

  append(entry: TimelineEntry): void {
    if (this.closed || this.truncated) return;
    this.write(entry);
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    this.flush();
    return new Promise((resolve) => this.out.end(resolve));
  }

  private write(obj: object): void {
    const line = JSON.stringify(obj) + '\n';
    if (this.written + line.length > this.maxBytes) {
      this.truncated = true;
      this.enqueue(JSON.stringify({ t: -1, type: 'truncated', text: `recording capped at ${this.maxBytes} bytes` }) + '\n');
      return;
    }
    this.written += line.length;
    this.enqueue(line);
  }

  private enqueue(line: string): void {
    this.pending += line;
    if (this.pending.length >= FLUSH_BYTES) this.flush();
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      setTimeout(this.flush, FLUSH_MS).unref();
    }
  }
}

/** Read a whole recording (replay, admin API). Throws when it does not exist. */
export function readRecording(dataDir: string, sessionId: string): Recording {
  const lines = readFileSync(recordingPath(dataDir, sessionId), 'utf8').split('\n').filter(Boolean);
  const [first, ...rest] = lines;
  return { header: JSON.parse(first ?? '{}') as Record<string, unknown>, entries: rest.map((l) => JSON.parse(l) as TimelineEntry) };
}
