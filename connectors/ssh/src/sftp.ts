/**
 * SFTP (draft-ietf-secsh-filexfer-02, version 3 as OpenSSH speaks it) read in both directions
 * of an `sftp` subsystem: whole packets only, so a refused request can be answered by the
 * gateway (`SSH_FXP_STATUS` permission denied) at a packet boundary, and every file the
 * caller opens is followed from OPEN to CLOSE: path, direction, bytes each way and the
 * SHA-256 of what was read or written (when it was read or written in order, as sftp and
 * scp clients do; a file accessed out of order gets no hash and says so).
 */
import { createHash, type Hash } from 'node:crypto';
import { posix } from 'node:path';

export const FXP = {
  INIT: 1,
  VERSION: 2,
  OPEN: 3,
  CLOSE: 4,
  READ: 5,
  WRITE: 6,
  LSTAT: 7,
  FSTAT: 8,
  SETSTAT: 9,
  FSETSTAT: 10,
  OPENDIR: 11,
  READDIR: 12,
  REMOVE: 13,
  MKDIR: 14,
  RMDIR: 15,
  REALPATH: 16,
  STAT: 17,
  RENAME: 18,
  READLINK: 19,
  SYMLINK: 20,
  STATUS: 101,
  HANDLE: 102,
  DATA: 103,
  NAME: 104,
  ATTRS: 105,
  EXTENDED: 200,
  EXTENDED_REPLY: 201,
} as const;

const FX_PERMISSION_DENIED = 3;
const PFLAG_READ = 1;
const PFLAG_WRITE = 2;
const PFLAG_APPEND = 4;
const PFLAG_CREAT = 8;
const PFLAG_TRUNC = 16;

/** OpenSSH's sftp-server refuses packets over 256 KiB; leave room for its headers. */
export const MAX_SFTP_PACKET = 256 * 1024 + 1024;
const MAX_HANDLES = 1024;
const MAX_PENDING = 4096;

/** Cuts a byte stream into SFTP packets (4-byte length + body). */
export class SftpFramer {
  private parts: Buffer[] = [];
  private have = 0;
  error: string | null = null;

  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    if (this.error) return out;
    this.parts.push(chunk);
    this.have += chunk.length;
    for (;;) {
      if (this.have < 4) break;
      const head = this.peek(4);
      const len = head.readUInt32BE(0);
      if (len < 1 || len > MAX_SFTP_PACKET) {
        this.error = `SFTP packet of ${len} bytes (limit ${MAX_SFTP_PACKET})`;
        break;
      }
      if (this.have < 4 + len) break;
      out.push(this.take(4 + len));
    }
    return out;
  }

  private peek(n: number): Buffer {
    if (this.parts[0].length >= n) return this.parts[0];
    const all = Buffer.concat(this.parts);
    this.parts = [all];
    return all;
  }

  private take(n: number): Buffer {
    const all = this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts);
    const pkt = all.subarray(0, n);
    const rest = all.subarray(n);
    this.parts = rest.length ? [rest] : [];
    this.have -= n;
    return pkt;
  }
}

/** A request the caller made that rules may judge. */
export interface SftpOperation {
  id: number;
  /** `read`, `write`, `list`, `remove`, `mkdir`, `rmdir`, `rename`, `symlink`, `link`, `setstat`, `extended:<name>`. */
  op: string;
  /** Absolute where the gateway knows the remote working folder; as sent otherwise. */
  paths: string[];
  /** A relative path whose base the gateway does not know (cannot be judged by path). */
  unresolved: boolean;
}

export interface SftpFileReport {
  path: string;
  direction: 'upload' | 'download' | 'open';
  /** Open flags in words (`read`, `write`, `create`, `truncate`, `append`). */
  flags: string[];
  bytesRead: number;
  bytesWritten: number;
  /** SHA-256 of the bytes read (download) or written (upload), null when not sequential. */
  sha256: string | null;
  /** True when the CLOSE was answered OK. */
  complete: boolean;
  startedAt: number;
}

export interface SftpOpReport {
  op: SftpOperation;
  /** SFTP status code of the reply (0 = OK). */
  status: number;
  startedAt: number;
}

class Stream {
  bytes = 0;
  next = 0;
  sequential = true;
  readonly hash: Hash = createHash('sha256');
  add(offset: number, data: Buffer): void {
    this.bytes += data.length;
    if (!this.sequential) return;
    if (offset !== this.next) {
      this.sequential = false;
      return;
    }
    this.hash.update(data);
    this.next += data.length;
  }
}

interface OpenFile {
  path: string;
  pflags: number;
  read: Stream;
  write: Stream;
  startedAt: number;
}

type Pending =
  | { kind: 'open'; path: string; pflags: number; startedAt: number }
  | { kind: 'read'; handle: string; offset: number }
  | { kind: 'close'; handle: string }
  | { kind: 'realpath-dot' }
  | { kind: 'op'; op: SftpOperation; startedAt: number }
  | { kind: 'other' };

class Reader {
  pos = 0;
  constructor(private readonly b: Buffer) {}
  u8(): number {
    if (this.pos + 1 > this.b.length) throw new RangeError('short');
    return this.b[this.pos++];
  }
  u32(): number {
    if (this.pos + 4 > this.b.length) throw new RangeError('short');
    const v = this.b.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  u64(): number {
    if (this.pos + 8 > this.b.length) throw new RangeError('short');
    const v = this.b.readBigUInt64BE(this.pos);
    this.pos += 8;
    return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
  }
  bytes(): Buffer {
    const n = this.u32();
    if (this.pos + n > this.b.length) throw new RangeError('short');
    const v = this.b.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
  str(): string {
    return this.bytes().toString('utf8');
  }
}

export class SftpTracker {
  private readonly pending = new Map<number, Pending>();
  private readonly files = new Map<string, OpenFile>();
  /** The remote working folder (from the client's `realpath(".")`), to resolve relative paths. */
  private cwd: string | null = null;
  bytesUp = 0;
  bytesDown = 0;
  error: string | null = null;

  constructor(
    private readonly onFile: (f: SftpFileReport) => void,
    private readonly onOp: (r: SftpOpReport) => void,
  ) {}

  /**
   * A caller → target packet. Returns the operation to judge before forwarding, or null
   * (forward as is). Sets `error` (and returns null) for a packet that does not parse.
   */
  request(pkt: Buffer): SftpOperation | null {
    this.bytesUp += pkt.length;
    try {
      const r = new Reader(pkt);
      r.u32();
      const type = r.u8();
      if (type === FXP.INIT) return null;
      const id = r.u32();
      if (this.pending.size >= MAX_PENDING) throw new RangeError(`more than ${MAX_PENDING} SFTP requests outstanding`);
      const at = Date.now();
      const path = () => this.resolve(r.str());
      switch (type) {
        case FXP.OPEN: {
          const p = path();
          const pflags = r.u32();
          this.pending.set(id, { kind: 'open', path: p.path, pflags, startedAt: at });
          return { id, op: pflags & (PFLAG_WRITE | PFLAG_APPEND | PFLAG_CREAT | PFLAG_TRUNC) ? 'write' : 'read', paths: [p.path], unresolved: p.unresolved };
        }
        case FXP.READ: {
          const handle = r.bytes().toString('hex');
          this.pending.set(id, { kind: 'read', handle, offset: r.u64() });
          return null;
        }
        case FXP.WRITE: {
          const handle = r.bytes().toString('hex');
          const offset = r.u64();
          const data = r.bytes();
          this.files.get(handle)?.write.add(offset, data);
          this.pending.set(id, { kind: 'other' });
          return null;
        }
        case FXP.CLOSE: {
          this.pending.set(id, { kind: 'close', handle: r.bytes().toString('hex') });
          return null;
        }
        case FXP.REALPATH: {
          const raw = r.str();
          this.pending.set(id, raw === '.' && this.cwd === null ? { kind: 'realpath-dot' } : { kind: 'other' });
          return null;
        }
        case FXP.OPENDIR:
        case FXP.REMOVE:
        case FXP.MKDIR:
        case FXP.RMDIR:
        case FXP.SETSTAT: {
          const p = path();
          const op = { [FXP.OPENDIR]: 'list', [FXP.REMOVE]: 'remove', [FXP.MKDIR]: 'mkdir', [FXP.RMDIR]: 'rmdir', [FXP.SETSTAT]: 'setstat' }[type];
          return this.op(id, op, [p], at);
        }
        case FXP.RENAME:
          return this.op(id, 'rename', [path(), path()], at);
        case FXP.SYMLINK:
          // OpenSSH sends (target, link) — reversed from the draft; both are judged.
          return this.op(id, 'symlink', [path(), path()], at);
        case FXP.EXTENDED: {
          const name = r.str();
          if (name === 'posix-rename@openssh.com') return this.op(id, 'rename', [path(), path()], at);
          if (name === 'hardlink@openssh.com') return this.op(id, 'link', [path(), path()], at);
          if (name === 'lsetstat@openssh.com') return this.op(id, 'setstat', [path()], at);
          if (READ_ONLY_EXTENSIONS.has(name)) {
            this.pending.set(id, { kind: 'other' });
            return null;
          }
          return this.op(id, `extended:${name}`, [], at);
        }
        default:
          this.pending.set(id, { kind: 'other' });
          return null;
      }
    } catch (e) {
      this.error = `malformed SFTP request: ${(e as Error).message}`;
      return null;
    }
  }

  /** The gateway refused `op`: forget it, and the reply to send to the caller. */
  refuse(op: SftpOperation, message: string): Buffer {
    this.pending.delete(op.id);
    const msg = Buffer.from(message);
    const pkt = Buffer.alloc(4 + 1 + 4 + 4 + 4 + msg.length + 4);
    let o = pkt.writeUInt32BE(pkt.length - 4, 0);
    o = pkt.writeUInt8(FXP.STATUS, o);
    o = pkt.writeUInt32BE(op.id, o);
    o = pkt.writeUInt32BE(FX_PERMISSION_DENIED, o);
    o = pkt.writeUInt32BE(msg.length, o);
    o += msg.copy(pkt, o);
    pkt.writeUInt32BE(0, o);
    return pkt;
  }

  /** A target → caller packet (always forwarded). */
  response(pkt: Buffer): void {
    this.bytesDown += pkt.length;
    try {
      const r = new Reader(pkt);
      r.u32();
      const type = r.u8();
      if (type === FXP.VERSION) return;
      const id = r.u32();
      const p = this.pending.get(id);
      if (!p) return;
      this.pending.delete(id);
      switch (p.kind) {
        case 'open':
          if (type === FXP.HANDLE) {
            if (this.files.size >= MAX_HANDLES) throw new RangeError(`more than ${MAX_HANDLES} SFTP files open`);
            const handle = r.bytes().toString('hex');
            this.files.set(handle, { path: p.path, pflags: p.pflags, read: new Stream(), write: new Stream(), startedAt: p.startedAt });
          }
          return;
        case 'read':
          if (type === FXP.DATA) this.files.get(p.handle)?.read.add(p.offset, r.bytes());
          return;
        case 'close': {
          const f = this.files.get(p.handle);
          if (!f) return;
          this.files.delete(p.handle);
          this.report(f, type === FXP.STATUS && r.u32() === 0);
          return;
        }
        case 'realpath-dot':
          if (type === FXP.NAME && r.u32() >= 1) {
            const dir = r.str();
            if (dir.startsWith('/')) this.cwd = dir;
          }
          return;
        case 'op':
          this.onOp({ op: p.op, status: type === FXP.STATUS ? r.u32() : 0, startedAt: p.startedAt });
          return;
        default:
          return;
      }
    } catch (e) {
      this.error = `malformed SFTP reply: ${(e as Error).message}`;
    }
  }

  /** The channel closed: files still open are reported incomplete. */
  end(): void {
    for (const f of this.files.values()) this.report(f, false);
    this.files.clear();
  }

  private op(id: number, op: string, paths: { path: string; unresolved: boolean }[], at: number): SftpOperation {
    const o: SftpOperation = { id, op, paths: paths.map((p) => p.path), unresolved: paths.some((p) => p.unresolved) };
    this.pending.set(id, { kind: 'op', op: o, startedAt: at });
    return o;
  }

  private resolve(raw: string): { path: string; unresolved: boolean } {
    if (raw.startsWith('/')) return { path: posix.normalize(raw), unresolved: false };
    if (this.cwd !== null) return { path: posix.normalize(posix.join(this.cwd, raw)), unresolved: false };
    return { path: raw === '' ? '.' : posix.normalize(raw), unresolved: true };
  }

  private report(f: OpenFile, complete: boolean): void {
    const upload = f.write.bytes > 0 || (f.pflags & (PFLAG_WRITE | PFLAG_APPEND)) !== 0;
    const stream = upload ? f.write : f.read;
    const flags = [
      ...(f.pflags & PFLAG_READ ? ['read'] : []),
      ...(f.pflags & PFLAG_WRITE ? ['write'] : []),
      ...(f.pflags & PFLAG_APPEND ? ['append'] : []),
      ...(f.pflags & PFLAG_CREAT ? ['create'] : []),
      ...(f.pflags & PFLAG_TRUNC ? ['truncate'] : []),
    ];
    this.onFile({
      path: f.path,
      direction: upload ? 'upload' : f.read.bytes > 0 ? 'download' : 'open',
      flags,
      bytesRead: f.read.bytes,
      bytesWritten: f.write.bytes,
      sha256: stream.sequential ? stream.hash.digest('hex') : null,
      complete,
      startedAt: f.startedAt,
    });
  }
}

/** OpenSSH extensions that change nothing on the target (answered without judging). */
const READ_ONLY_EXTENSIONS = new Set([
  'statvfs@openssh.com',
  'fstatvfs@openssh.com',
  'fsync@openssh.com',
  'limits@openssh.com',
  'expand-path@openssh.com',
  'home-directory',
  'users-groups-by-id@openssh.com',
]);
