/**
 * The legacy scp protocol (rcp over an exec of `scp -t PATH` / `scp -f PATH`), read on the
 * direction that carries files: caller → target for an upload (`-t`, the target is the sink),
 * target → caller for a download (`-f`, the target is the source).
 *
 * The source sends control lines — `C<mode> <size> <name>` (a file, then exactly `size` bytes
 * and one status byte), `D<mode> 0 <name>` (enter a directory), `E` (leave it), `T…` (times),
 * `\x01`/`\x02` + text (warning / fatal error) — and the sink answers each with a status byte.
 * Each file is reported with its path, size and SHA-256; each `C`/`D` line can be judged
 * before it is forwarded (a refusal withholds it). Malformed input stops the stream.
 */
import { createHash, type Hash } from 'node:crypto';
import { posix } from 'node:path';

export interface ScpFile {
  path: string;
  /** The name the source sent (the sink may write it under the target path instead). */
  name: string;
  mode: string;
  /** Declared size; `bytes` is what passed (less when the transfer was cut). */
  size: number;
  bytes: number;
  sha256: string;
  complete: boolean;
}

export interface ScpRequest {
  /** `upload` for `scp -t`, `download` for `scp -f`. */
  direction: 'upload' | 'download';
  /** The path argument of the exec. */
  target: string;
  /** `-r` or `-d`: the target is a directory. */
  directory: boolean;
}

/** `scp [-v -r -p -d -q -T] -t|-f PATH` → the request, or null when the exec is something else. */
export function scpRequest(argv: readonly string[]): ScpRequest | null {
  if (argv.length < 2 || posix.basename(argv[0]) !== 'scp') return null;
  let direction: ScpRequest['direction'] | null = null;
  let directory = false;
  let target: string | null = null;
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      target = argv[i + 1] ?? null;
      if (i + 2 !== argv.length) return null;
      break;
    }
    if (a.startsWith('-') && a.length > 1) {
      for (const f of a.slice(1)) {
        if (f === 't') direction = 'upload';
        else if (f === 'f') direction = 'download';
        else if (f === 'r' || f === 'd') directory = true;
        else if (!'vpqT'.includes(f)) return null;
      }
      continue;
    }
    if (target !== null) return null;
    target = a;
  }
  return direction && target !== null ? { direction, target, directory } : null;
}

type Verdict = { forward: Buffer[]; refused?: { path: string; reason: string }; error?: string };

export class ScpStream {
  private state: 'line' | 'data' | 'status' = 'line';
  private line: Buffer[] = [];
  private lineLength = 0;
  private dirs: string[] = [];
  private file: { path: string; name: string; mode: string; size: number; bytes: number; hash: Hash } | null = null;
  private stopped = false;
  readonly files: ScpFile[] = [];

  constructor(
    private readonly req: ScpRequest,
    /** Judge a file or directory path before its line is forwarded: a refusal reason, or null. */
    private readonly judge: (path: string, kind: 'file' | 'directory') => string | null,
    private readonly onFile: (f: ScpFile) => void,
  ) {}

  /**
   * Feed bytes of the file-carrying direction; returns what may be forwarded now. File data
   * passes at once; a control line is held until it is whole and judged.
   */
  push(chunk: Buffer): Verdict {
    if (this.stopped) return { forward: [] };
    const forward: Buffer[] = [];
    let i = 0;
    while (i < chunk.length) {
      if (this.state === 'data') {
        const f = this.file!;
        const n = Math.min(f.size - f.bytes, chunk.length - i);
        const piece = chunk.subarray(i, i + n);
        f.hash.update(piece);
        f.bytes += n;
        forward.push(piece);
        i += n;
        if (f.bytes === f.size) this.state = 'status';
        continue;
      }
      if (this.state === 'status') {
        const f = this.file!;
        this.file = null;
        this.state = 'line';
        forward.push(chunk.subarray(i, i + 1));
        this.report(f, chunk[i] === 0);
        i++;
        continue;
      }
      const nl = chunk.indexOf(0x0a, i);
      const end = nl === -1 ? chunk.length : nl + 1;
      this.line.push(Buffer.from(chunk.subarray(i, end)));
      this.lineLength += end - i;
      i = end;
      if (this.lineLength > 4096) return this.fail(forward, 'scp control line longer than 4096 bytes');
      if (nl === -1) break;
      const whole = Buffer.concat(this.line);
      this.line = [];
      this.lineLength = 0;
      const outcome = this.control(whole.toString('utf8').replace(/\n$/, ''));
      if (outcome === 'error') return this.fail(forward, 'malformed scp control line');
      if (typeof outcome === 'object') {
        this.stopped = true;
        return { forward, refused: outcome };
      }
      forward.push(whole);
    }
    return { forward };
  }

  /** The stream ended: a file cut short is reported as incomplete. */
  end(): void {
    if (this.file) {
      const f = this.file;
      this.file = null;
      this.report(f, false);
    }
  }

  private report(f: NonNullable<ScpStream['file']>, ok: boolean): void {
    const done: ScpFile = { path: f.path, name: f.name, mode: f.mode, size: f.size, bytes: f.bytes, sha256: f.hash.digest('hex'), complete: ok && f.bytes === f.size };
    this.files.push(done);
    this.onFile(done);
  }

  private fail(forward: Buffer[], error: string): Verdict {
    this.stopped = true;
    return { forward, error };
  }

  /** One control line: 'ok', 'error', or a refusal. */
  private control(text: string): 'ok' | 'error' | { path: string; reason: string } {
    const kind = text[0];
    if (kind === '\x01' || kind === '\x02') return 'ok'; // the source reports an error; the sink sees it
    if (kind === 'E') {
      if (text !== 'E' || this.dirs.length === 0) return 'error';
      this.dirs.pop();
      return 'ok';
    }
    if (kind === 'T') return /^T\d+ \d+ \d+ \d+$/.test(text) ? 'ok' : 'error';
    if (kind !== 'C' && kind !== 'D') return 'error';
    const m = /^[CD]([0-7]{4}) (\d+) (.+)$/.exec(text);
    if (!m) return 'error';
    const name = m[3];
    // The sink refuses these names itself (CVE-2018-20685 / CVE-2019-6111); so do we.
    if (name.includes('/') || name === '..' || name === '.') return 'error';
    const path = this.pathOf(name, kind === 'D');
    const reason = this.judge(path, kind === 'D' ? 'directory' : 'file');
    if (reason !== null) return { path, reason };
    if (kind === 'D') {
      this.dirs.push(name);
      return 'ok';
    }
    const size = Number(m[2]);
    if (!Number.isSafeInteger(size)) return 'error';
    this.file = { path, name, mode: m[1], size, bytes: 0, hash: createHash('sha256') };
    this.state = size === 0 ? 'status' : 'data';
    return 'ok';
  }

  private pathOf(name: string, isDir: boolean): string {
    const { target, direction } = this.req;
    if (direction === 'upload') {
      // A single file to a target that is not known to be a directory is written at the target itself.
      if (this.dirs.length === 0 && !isDir && !this.req.directory && !target.endsWith('/')) return target;
      return posix.join(target, ...this.dirs, name);
    }
    // Download: the source names what it sends, under the requested path's folder.
    if (this.dirs.length === 0 && !isDir && posix.basename(target) === name) return target;
    return posix.join(posix.dirname(target), ...this.dirs, name);
  }
}
