/**
 * A Relay between a test-held client socket and a scripted upstream (the kit's harness),
 * with packet builders. The Session uses the real policy and masking engines; the audit log
 * is in memory.
 */
import type tap from 'tap';
import { compileMasking } from '@gatehouse/masking';
import { compilePolicy } from '@gatehouse/policy';
import type { MaskingRuleConfig, RuleConfig } from '@gatehouse/core';
import { silentLogger } from '@gatehouse/core';
import { authenticatedSession, scriptedPeer, socketPair } from '@gatehouse/connector-kit/testing';
import { encode, eofPayload, errPayload, lenencInt, lenencString, okPayload, PacketFramer, u16, u32, type Packet } from '../src/packet.js';
import { CAP, GATEWAY_CAPABILITIES } from '../src/protocol.js';
import { Relay } from '../src/relay.js';
import { TYPE } from '../src/result-shape.js';

type TapLike = Parameters<Parameters<typeof tap.test>[0]>[0];

export const CARD = '4111111111111111';
export const MASKED_CARD = '************1111';

export interface ColSpec {
  name: string;
  org?: string;
  table?: string;
  schema?: string;
  type?: number;
}

export function column(c: ColSpec): Buffer {
  return Buffer.concat([
    lenencString('def'),
    lenencString(c.schema ?? 'shop'),
    lenencString(c.table ?? (c.org ? 'cards' : '')),
    lenencString(c.table ?? (c.org ? 'cards' : '')),
    lenencString(c.name),
    lenencString(c.org ?? ''),
    lenencInt(0x0c),
    u16(45),
    u32(255),
    Buffer.from([c.type ?? TYPE.VAR_STRING]),
    u16(0),
    Buffer.from([0]),
    u16(0),
  ]);
}

export const textRow = (...vals: (string | null)[]) => Buffer.concat(vals.map((v) => (v === null ? Buffer.from([0xfb]) : lenencString(v))));
export const ok = (status = 0x0002, affected = 0) => okPayload(status, { affectedRows: affected });
export const eof = (status = 0x0002) => eofPayload(status);
/** The terminator of a result set in the negotiated mode. */
export const end = (deprecateEof: boolean, status = 0x0002) => (deprecateEof ? okPayload(status, { header: 0xfe }) : eofPayload(status));
export const err = (code: number, state: string, msg: string) => errPayload(code, state, msg);
export const query = (sql: string) => Buffer.concat([Buffer.from([0x03]), Buffer.from(sql)]);

/** A whole text result set: count, definitions, (EOF), rows, terminator. */
export function resultSet(deprecateEof: boolean, cols: ColSpec[], rows: Buffer[], status = 0x0002): Buffer[] {
  return [lenencInt(cols.length), ...cols.map(column), ...(deprecateEof ? [] : [eof()]), ...rows, end(deprecateEof, status)];
}

/** Payloads as packets numbered from 1 (a response). */
export function reply(payloads: Buffer[], first = 1): Buffer[] {
  return payloads.map((p, i) => encode(p, first + i));
}

export function packets(buf: Buffer): Packet[] {
  const f = new PacketFramer(1 << 30);
  f.push(buf);
  const out: Packet[] = [];
  let p: Packet | null;
  while ((p = f.next())) out.push({ ...p, payload: Buffer.from(p.payload), raw: null });
  return out;
}

const DEFAULT_RULES: RuleConfig[] = [{ name: 'no-drop', match: { statement: ['drop'] }, action: 'deny' }];
const DEFAULT_MASKING: MaskingRuleConfig[] = [
  { columns: ['cards.card_number', 'account_no'], with: 'last4' },
  { detectors: ['credit_card'], with: 'last4' },
];

export interface SetupOptions {
  rules?: RuleConfig[];
  masking?: MaskingRuleConfig[];
  deprecateEof?: boolean;
}

/**
 * A relay with a scripted upstream: `answer(command, n)` gets each caller packet the relay
 * forwards (payload) and returns the upstream's packets for it (already encoded).
 */
export async function setup(t: TapLike, answer: (payload: Buffer, n: number) => Buffer[], o: SetupOptions = {}) {
  const policy = compilePolicy(o.rules ?? DEFAULT_RULES, { connectorType: 'mysql' });
  const masking = compileMasking(o.masking ?? DEFAULT_MASKING);
  if (!policy.ok || !masking.ok) throw new Error('compile');
  const { session, audit } = await authenticatedSession({ connector: { name: 'my', type: 'mysql' }, policy: policy.value, masking: masking.value });
  const [client, relaySide, closeClientPair] = await socketPair();
  const [upstream, upstreamPeer, closeUpstreamPair] = await socketPair();
  const framer = new PacketFramer(1 << 30);
  const copying = {
    push: (c: Buffer) => framer.push(c),
    next: (): Packet | null => {
      const p = framer.next();
      return p ? { ...p, payload: Buffer.from(p.payload), raw: null } : null;
    },
    get error() {
      return framer.error;
    },
  };
  let n = 0;
  const peer = scriptedPeer<Packet>(
    upstreamPeer,
    copying,
    () => true,
    (batch) => batch.flatMap((p) => answer(p.payload, n++)),
  );
  let received = Buffer.alloc(0);
  let closed = false;
  client.on('data', (c: Buffer) => (received = Buffer.concat([received, c])));
  client.on('close', () => (closed = true));
  client.on('error', () => {});
  const caps = o.deprecateEof === false ? GATEWAY_CAPABILITIES & ~CAP.DEPRECATE_EOF & ~CAP.SSL : GATEWAY_CAPABILITIES & ~CAP.SSL;
  const ended = new Promise<void>((resolve) => {
    new Relay(relaySide, upstream, session, {
      database: 'shop',
      onParseError: 'deny',
      maxMessageBytes: 1 << 20,
      maxResultMessageBytes: 1 << 24,
      maxPrepared: 100,
      catalog: null,
      maskingMode: 'restricted',
      capabilities: caps,
      status: 0x0002,
      log: silentLogger,
      onClose: resolve,
    }).start();
  });
  t.teardown(() => {
    closeClientPair();
    closeUpstreamPair();
  });
  /** Send caller packets, then wait until `done(packets so far)` or the socket closed. */
  async function send(bufs: Buffer[], done: (ps: Packet[]) => boolean): Promise<Packet[]> {
    const start = received.length;
    client.write(Buffer.concat(bufs));
    const deadline = Date.now() + 3000;
    for (;;) {
      const got = packets(received.subarray(start));
      if (done(got) || closed || Date.now() > deadline) return got;
      await new Promise((r) => setTimeout(r, 5));
    }
  }
  return { audit, send, upstreamSeen: peer.seen, ended, isClosed: () => closed };
}

/** Done when the last packet received is a final one (OK 0x00 without more results, ERR, EOF/0xFE without more results), `n` times. */
export const finals = (n: number) => (ps: Packet[]) => ps.filter((p) => isFinal(p.payload)).length >= n;
export function isFinal(b: Buffer): boolean {
  if (b[0] === 0xff) return true;
  if (b[0] === 0xfe && b.length < 12) return (b.length === 5 ? b.readUInt16LE(3) : b.readUInt16LE(3)) & 0x0008 ? false : true;
  if (b[0] === 0x00 && b.length >= 7 && b.length <= 11) return (b.readUInt16LE(3) & 0x0008) === 0;
  return false;
}
export const errors = (ps: Packet[]) => ps.filter((p) => p.payload[0] === 0xff).map((p) => p.payload.toString('utf8', 9));
export const rowsText = (ps: Packet[]) => ps.map((p) => p.payload.toString('latin1'));
