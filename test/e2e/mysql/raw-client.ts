/**
 * A minimal MySQL client for tests that need exact packets: COM_STMT_FETCH cursors,
 * COM_FIELD_LIST, packets out of sequence, garbage. Logs in with mysql_clear_password
 * (the gateway accepts it on loopback) and reads packets one by one.
 */
import { connect, type Socket } from 'node:net';
import { encode, PacketFramer, type Packet } from '@gatehouse/connector-mysql';

export const CAPS = {
  LONG_PASSWORD: 1,
  LONG_FLAG: 4,
  CONNECT_WITH_DB: 8,
  PROTOCOL_41: 512,
  TRANSACTIONS: 8192,
  SECURE_CONNECTION: 32768,
  MULTI_STATEMENTS: 1 << 16,
  MULTI_RESULTS: 1 << 17,
  PS_MULTI_RESULTS: 1 << 18,
  PLUGIN_AUTH: 1 << 19,
  PLUGIN_AUTH_LENENC_CLIENT_DATA: 1 << 21,
  DEPRECATE_EOF: 1 << 24,
} as const;

export class RawClient {
  private readonly framer = new PacketFramer(1 << 30);
  private readonly queue: Packet[] = [];
  private waiter: (() => void) | null = null;
  closed = false;

  private constructor(readonly socket: Socket) {
    socket.on('data', (c: Buffer) => {
      this.framer.push(c);
      let p: Packet | null;
      while ((p = this.framer.next())) this.queue.push({ ...p, payload: Buffer.from(p.payload), raw: null });
      this.waiter?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.waiter?.();
    });
    socket.on('error', () => {});
  }

  static async open(addr: { host: string; port: number }): Promise<RawClient> {
    const s = connect(addr.port, addr.host);
    await new Promise((r, j) => {
      s.once('connect', r);
      s.once('error', j);
    });
    return new RawClient(s);
  }

  /** Connect and log in with the token (mysql_clear_password, loopback). */
  static async login(addr: { host: string; port: number }, token: string, o: { database?: string; deprecateEof?: boolean } = {}): Promise<RawClient> {
    const c = await RawClient.open(addr);
    await c.next(); // greeting
    let caps =
      CAPS.LONG_PASSWORD |
      CAPS.LONG_FLAG |
      CAPS.PROTOCOL_41 |
      CAPS.TRANSACTIONS |
      CAPS.SECURE_CONNECTION |
      CAPS.MULTI_STATEMENTS |
      CAPS.MULTI_RESULTS |
      CAPS.PS_MULTI_RESULTS |
      CAPS.PLUGIN_AUTH |
      CAPS.PLUGIN_AUTH_LENENC_CLIENT_DATA;
    if (o.deprecateEof) caps |= CAPS.DEPRECATE_EOF;
    if (o.database) caps |= CAPS.CONNECT_WITH_DB;
    const head = Buffer.alloc(32);
    head.writeUInt32LE(caps >>> 0, 0);
    head.writeUInt32LE(1 << 24, 4);
    head[8] = 45;
    const pw = Buffer.from(token + '\0');
    const body = Buffer.concat([
      head,
      Buffer.from('app\0'),
      Buffer.from([pw.length]),
      pw,
      ...(o.database ? [Buffer.from(o.database + '\0')] : []),
      Buffer.from('mysql_clear_password\0'),
    ]);
    c.send(body, 1);
    const ok = await c.next();
    if (!ok || ok.payload[0] !== 0) throw new Error(`login failed: ${ok?.payload.toString('utf8', 9)}`);
    return c;
  }

  send(payload: Buffer, seq = 0): void {
    this.socket.write(encode(payload, seq));
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** The next packet, or null when the connection closed or nothing came within `ms`. */
  async next(ms = 5000): Promise<Packet | null> {
    const deadline = Date.now() + ms;
    while (this.queue.length === 0) {
      if (this.closed || Date.now() > deadline) return null;
      await new Promise<void>((r) => {
        this.waiter = r;
        setTimeout(r, 50);
      });
      this.waiter = null;
    }
    return this.queue.shift() ?? null;
  }

  /** Packets until one matches `last` (included), the connection closes, or `ms` pass. */
  async until(last: (p: Packet) => boolean, ms = 5000): Promise<Packet[]> {
    const out: Packet[] = [];
    for (;;) {
      const p = await this.next(ms);
      if (!p) return out;
      out.push(p);
      if (last(p)) return out;
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

export const isErr = (p: Packet) => p.payload[0] === 0xff;
export const isEofOrErr = (p: Packet) => p.payload[0] === 0xff || (p.payload[0] === 0xfe && p.payload.length < 9);
export const errText = (p: Packet | undefined | null) => (p && p.payload[0] === 0xff ? p.payload.toString('utf8', 9) : '');
export const query = (sql: string) => Buffer.concat([Buffer.from([0x03]), Buffer.from(sql)]);
