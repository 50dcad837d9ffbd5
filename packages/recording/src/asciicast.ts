/**
 * Terminal recordings as asciicast v2 (https://docs.asciinema.org/manual/asciicast/v2/),
 * gzip-compressed: one file per terminal (an SSH shell or exec), `recordings/<session>.<n>.cast.gz`.
 *
 * - Output (`o`) always; input (`i`) only when asked (typed passwords would be in it);
 *   resizes (`r`); markers (`m`) for notes such as truncation.
 * - Masking: the caller's detectors run over the text before it is written. A value split
 *   across chunks is found because text is held until a line end (LF or CR) — no detector
 *   matches across one — and only then masked and written, stamped with the time its first
 *   byte arrived. A line longer than `holdChars` is masked and written as it stands.
 * - Size: every session has one budget (`RecordingBudget`) shared by its terminals,
 *   counted in uncompressed event bytes (so the file is never larger). Past it, one marker
 *   event says so and nothing more is written: truncated, never silently dropped.
 * - Tamper evidence: the SHA-256 of the compressed file as written is returned by
 *   `close()`, for the connector to commit into the audit log.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, readdirSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { createGunzip, createGzip, type Gzip } from 'node:zlib';
import { createInterface } from 'node:readline';
import type { Logger } from '@gatehouse/core';

/** The byte budget of one session's recordings (uncompressed event bytes). */
export class RecordingBudget {
  private used_ = 0;
  constructor(readonly maxBytes: number) {}

  get used(): number {
    return this.used_;
  }

  /** Take `n` bytes; false (and nothing taken) when they do not fit. */
  take(n: number): boolean {
    if (this.used_ + n > this.maxBytes) return false;
    this.used_ += n;
    return true;
  }

  /** Count bytes that are written whatever the budget says (a header, a truncation marker). */
  force(n: number): void {
    this.used_ += n;
  }
}

export interface AsciicastHeader {
  width: number;
  height: number;
  /** Unix seconds of the start. */
  timestamp?: number;
  title?: string;
  env?: Record<string, string>;
  /** Anything else (ignored by players): session, channel, command, subject… */
  [key: string]: unknown;
}

export interface AsciicastOptions {
  path: string;
  header: AsciicastHeader;
  budget: RecordingBudget;
  /** The caller's detector masking (`Masker.maskText`); absent or inactive: written as is. */
  mask?: ((text: string) => string) | null;
  /** Record input (`i` events). Default false. */
  input?: boolean;
  /** Longest text held waiting for a line end, characters. Default 4096. */
  holdChars?: number;
  logger?: Logger;
  /** Clock in ms (tests). */
  now?: () => number;
}

export interface AsciicastSummary {
  /** File name relative to the recordings folder. */
  file: string;
  /** Hex SHA-256 of the compressed file as written. */
  sha256: string;
  /** Compressed bytes on disk. */
  bytes: number;
  /** Events written (header excluded). */
  events: number;
  truncated: boolean;
  /** True if writing failed (disk full…): the file is incomplete. */
  failed: boolean;
}

/** One stream's text held until a line end, stamped with the time its first byte arrived. */
class Held {
  text = '';
  since = 0;
  readonly decoder = new StringDecoder('utf8');
}

export class AsciicastWriter {
  private readonly gzip: Gzip;
  private readonly file: WriteStream;
  private readonly hash = createHash('sha256');
  private compressed = 0;
  private events = 0;
  private truncated = false;
  private failed = false;
  private closed: Promise<AsciicastSummary> | null = null;
  private readonly started: number;
  private readonly now: () => number;
  private readonly held: Record<'o' | 'i', Held> = { o: new Held(), i: new Held() };
  private readonly holdChars: number;
  private readonly finished: Promise<void>;

  constructor(private readonly o: AsciicastOptions) {
    this.now = o.now ?? Date.now;
    this.started = this.now();
    this.holdChars = o.holdChars ?? 4096;
    this.gzip = createGzip();
    this.file = createWriteStream(o.path, { flags: 'wx', mode: 0o600 });
    this.gzip.on('data', (c: Buffer) => {
      this.hash.update(c);
      this.compressed += c.length;
    });
    this.gzip.pipe(this.file);
    const onError = (e: Error) => {
      if (!this.failed) o.logger?.error({ err: e.message, path: o.path }, 'terminal recording write failed');
      this.failed = true;
    };
    this.gzip.on('error', onError);
    this.file.on('error', onError);
    this.finished = new Promise((resolve) => {
      this.file.once('close', resolve);
      this.file.once('error', () => resolve());
    });
    const header = { version: 2, timestamp: Math.floor(this.started / 1000), ...o.header };
    this.line(JSON.stringify(header), true);
  }

  /** Terminal output (stdout and stderr as the caller sees them). */
  output(data: Buffer): void {
    this.push('o', data);
  }

  /** What the caller typed; ignored unless `input` was asked for. */
  input(data: Buffer): void {
    if (this.o.input) this.push('i', data);
  }

  resize(cols: number, rows: number): void {
    this.flushHeld('o');
    this.event(this.now(), 'r', `${cols}x${rows}`);
  }

  marker(label: string): void {
    this.flushHeld('o');
    this.event(this.now(), 'm', label);
  }

  /** Flush held text, end the file; resolves once it is on disk with its hash. Idempotent. */
  close(): Promise<AsciicastSummary> {
    this.closed ??= (async () => {
      for (const k of ['i', 'o'] as const) {
        const h = this.held[k];
        const rest = h.decoder.end();
        if (rest) {
          if (!h.text) h.since = this.now();
          h.text += rest;
        }
        this.flushHeld(k);
      }
      this.gzip.end();
      await this.finished;
      const file = this.o.path.slice(this.o.path.lastIndexOf('/') + 1);
      return { file, sha256: this.hash.digest('hex'), bytes: this.compressed, events: this.events, truncated: this.truncated, failed: this.failed };
    })();
    return this.closed;
  }

  private push(kind: 'o' | 'i', data: Buffer): void {
    if (this.truncated || this.closed) return;
    const h = this.held[kind];
    const text = h.decoder.write(data);
    if (!text) return;
    if (!this.o.mask) {
      // Nothing to mask: no reason to hold text back, keep the exact timing.
      this.event(this.now(), kind, text);
      return;
    }
    if (!h.text) h.since = this.now();
    h.text += text;
    const cut = lastLineEnd(h.text);
    if (cut > 0) {
      const done = h.text.slice(0, cut);
      h.text = h.text.slice(cut);
      this.event(h.since, kind, this.o.mask(done));
      h.since = this.now();
    }
    if (h.text.length > this.holdChars) this.flushHeld(kind);
  }

  private flushHeld(kind: 'o' | 'i'): void {
    const h = this.held[kind];
    if (!h.text) return;
    const text = h.text;
    h.text = '';
    this.event(h.since, kind, this.o.mask ? this.o.mask(text) : text);
  }

  private event(at: number, kind: string, data: string): void {
    if (this.truncated) return;
    const t = Math.max(0, (at - this.started) / 1000);
    this.line(JSON.stringify([Number(t.toFixed(6)), kind, data]));
  }

  private line(text: string, header = false): void {
    const bytes = Buffer.byteLength(text) + 1;
    if (header) this.o.budget.force(bytes);
    else if (!this.o.budget.take(bytes)) {
      this.truncated = true;
      const t = Math.max(0, (this.now() - this.started) / 1000);
      // The marker is written past the budget: the cut must be visible in the file itself.
      const marker = JSON.stringify([Number(t.toFixed(6)), 'm', `gatehouse: recording truncated (session budget of ${this.o.budget.maxBytes} bytes reached)`]);
      this.o.budget.force(marker.length + 1);
      this.gzip.write(marker + '\n');
      this.events++;
      return;
    } else this.events++;
    this.gzip.write(text + '\n');
  }
}

function lastLineEnd(s: string): number {
  for (let i = s.length - 1; i >= 0; i--) {
    const c = s.charCodeAt(i);
    if (c === 0x0a || c === 0x0d) return i + 1;
  }
  return 0;
}

const CAST = /^([0-9a-f-]{36})\.(\d+)\.cast\.gz$/;

/** File name of terminal `n` of a session (inside `data_dir/recordings`). */
export function asciicastName(sessionId: string, n: number): string {
  if (!/^[0-9a-f-]{36}$/.test(sessionId)) throw new Error(`not a session id: ${sessionId}`);
  return `${sessionId}.${n}.cast.gz`;
}

/** The terminal recordings of a session, in order (full paths). */
export function listAsciicasts(dataDir: string, sessionId: string): string[] {
  const dir = join(dataDir, 'recordings');
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .map((n) => CAST.exec(n))
    .filter((m): m is RegExpExecArray => m !== null && m[1] === sessionId)
    .sort((a, b) => Number(a[2]) - Number(b[2]))
    .map((m) => join(dir, m[0]));
}

export type AsciicastEvent = [number, string, string];

/** Read a (gzip or plain) asciicast v2 file: its header, then its events one by one. */
export async function* readAsciicast(path: string): AsyncGenerator<Record<string, unknown> | AsciicastEvent> {
  const raw = createReadStream(path);
  const text = path.endsWith('.gz') ? raw.pipe(createGunzip()) : raw;
  const lines = createInterface({ input: text, crlfDelay: Infinity });
  let first = true;
  for await (const line of lines) {
    if (!line) continue;
    const v = JSON.parse(line) as unknown;
    if (first) {
      first = false;
      if (typeof v !== 'object' || v === null || Array.isArray(v) || (v as { version?: unknown }).version !== 2) throw new Error(`${path}: not an asciicast v2 recording`);
      yield v as Record<string, unknown>;
      continue;
    }
    if (!Array.isArray(v) || typeof v[0] !== 'number' || typeof v[1] !== 'string' || typeof v[2] !== 'string') throw new Error(`${path}: malformed event line`);
    yield v as AsciicastEvent;
  }
}
