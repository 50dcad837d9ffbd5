/**
 * JSON lines appended to a file, fsynced per batch, rotated by size. The byte length at the
 * last durable cursor is kept with the cursor: on restart the file is cut back to it, so a
 * batch written before a crash but not yet acknowledged is not written twice.
 */
import { closeSync, existsSync, fstatSync, fsyncSync, ftruncateSync, openSync, renameSync, statSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { alertLine, batchLines, type AlertRecord, type SinkBatch } from '../records.js';
import { ensureDir, syncDir } from '../state-file.js';
import type { Sink } from './sink.js';

interface FilePosition {
  bytes: number;
  ino: number;
}

export class FileSink implements Sink {
  readonly type = 'file';
  private fd: number | null = null;
  private bytes = 0;
  private ino = 0;

  constructor(
    readonly name: string,
    private readonly path: string,
    private readonly maxBytes: number,
  ) {}

  get target(): string {
    return this.path;
  }

  open(position: unknown): Promise<void> {
    ensureDir(dirname(this.path));
    this.fd = openSync(this.path, 'a', 0o640);
    const st = fstatSync(this.fd);
    const p = position as FilePosition | null;
    // Same file (not rotated meanwhile) and longer than at the last cursor: drop the unacknowledged tail.
    if (p && p.ino === st.ino && st.size > p.bytes) {
      ftruncateSync(this.fd, p.bytes);
      fsyncSync(this.fd);
    }
    this.bytes = fstatSync(this.fd).size;
    this.ino = st.ino;
    return Promise.resolve();
  }

  write(batch: SinkBatch): Promise<void> {
    const lines = batchLines(batch);
    if (lines.length) this.append(Buffer.from(lines.join('\n') + '\n', 'utf8'));
    return Promise.resolve();
  }

  alert(gatewayId: string, a: AlertRecord): Promise<void> {
    this.append(Buffer.from(alertLine(gatewayId, a) + '\n', 'utf8'));
    return Promise.resolve();
  }

  private append(buf: Buffer): void {
    if (this.fd === null) throw new Error('file sink is not open');
    if (this.bytes > 0 && this.bytes + buf.length > this.maxBytes) this.rotate();
    writeSync(this.fd, buf);
    fsyncSync(this.fd);
    this.bytes += buf.length;
  }

  /** path → path.<UTC timestamp>[.n]; a fresh file takes its place. */
  private rotate(): void {
    closeSync(this.fd!);
    this.fd = null;
    const stamp = new Date()
      .toISOString()
      .replace(/[-:]/g, '')
      .replace(/\.\d+Z$/, 'Z');
    let dest = `${this.path}.${stamp}`;
    for (let n = 1; existsSync(dest); n++) dest = `${this.path}.${stamp}.${n}`;
    renameSync(this.path, dest);
    this.fd = openSync(this.path, 'a', 0o640);
    syncDir(dirname(this.path));
    this.bytes = 0;
    this.ino = fstatSync(this.fd).ino;
  }

  position(): FilePosition {
    return { bytes: this.bytes, ino: this.ino };
  }

  close(): Promise<void> {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
    return Promise.resolve();
  }
}

/** Size of a file, 0 if missing (tests and metrics). */
export const fileBytes = (p: string): number => (existsSync(p) ? statSync(p).size : 0);
