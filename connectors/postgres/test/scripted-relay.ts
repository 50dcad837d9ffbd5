/**
 * A Relay between a test-held client socket and a scripted upstream (the kit's test
 * harness), with backend message builders. The Session uses the real policy and masking
 * engines; the audit log is in memory.
 */
import { compileMasking } from '@gatehouse/masking';
import { compilePolicy, initSqlParser } from '@gatehouse/policy';
import type { MaskingRuleConfig, RuleConfig } from '@gatehouse/core';
import { silentLogger } from '@gatehouse/core';
import { authenticatedSession, scriptedPeer, socketPair } from '@gatehouse/connector-kit/testing';
import { MessageFramer, type Frame } from '../src/framer.js';
import { Relay } from '../src/relay.js';
import { B, F, message } from '../src/wire.js';

export const CARD = '4111111111111111';
export const MASKED_CARD = '************1111';

export const cstr = (s: string) => Buffer.from(s + '\0', 'utf8');
export function i16(n: number) {
  const b = Buffer.alloc(2);
  b.writeInt16BE(n);
  return b;
}
export function i32(n: number) {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
}
export const rowDesc = (...names: string[]) =>
  message(B.RowDescription, Buffer.concat([i16(names.length), ...names.map((n) => Buffer.concat([cstr(n), i32(0), i16(0), i32(25), i16(-1), i32(-1), i16(0)]))]));
export const dataRow = (...vals: string[]) => message(B.DataRow, Buffer.concat([i16(vals.length), ...vals.flatMap((v) => [i32(Buffer.byteLength(v)), Buffer.from(v)])]));
export const complete = (tag: string) => message(B.CommandComplete, cstr(tag));
export const rfq = (status = 'I') => message(B.ReadyForQuery, status);
export const parseComplete = () => message(B.ParseComplete, Buffer.alloc(0));
export const bindComplete = () => message(B.BindComplete, Buffer.alloc(0));
export const fields = (type: number, f: Record<string, string>) => message(type, Buffer.concat([...Object.entries(f).map(([k, v]) => cstr(k + v)), Buffer.from([0])]));
export const error = (code: string, msg: string, extra: Record<string, string> = {}) => fields(B.ErrorResponse, { S: 'ERROR', V: 'ERROR', C: code, M: msg, ...extra });
export const sync = () => message(F.Sync, Buffer.alloc(0));

/** Frames of a byte stream. */
export function frames(buf: Buffer): Frame[] {
  const f = new MessageFramer(1 << 24);
  f.push(buf);
  const out: Frame[] = [];
  let x: Frame | null;
  while ((x = f.next())) out.push({ type: x.type, bytes: Buffer.from(x.bytes) });
  return out;
}

export const texts = (fs: Frame[], type: number) => fs.filter((f) => f.type === type).map((f) => f.bytes.toString('latin1'));
export const rowsOf = (fs: Frame[]) => texts(fs, B.DataRow);

import type tap from 'tap';
/** The `t` a tap subtest receives (tap does not export the type by name). */
type TapLike = Parameters<Parameters<typeof tap.test>[0]>[0];

const DEFAULT_RULES: RuleConfig[] = [{ name: 'no-drop', match: { statement: ['drop'] }, action: 'deny' }];
const DEFAULT_MASKING: MaskingRuleConfig[] = [
  { columns: ['card_number'], with: 'last4' },
  { detectors: ['credit_card'], with: 'last4' },
];

/**
 * A relay between a test-held client socket and a scripted upstream. `answer` gets the
 * frontend messages of each batch (up to a Sync, Query, Flush or CopyDone) and returns the replies.
 */
export async function setup(t: TapLike, answer: (batch: Frame[], n: number) => Buffer[], o: { rules?: RuleConfig[]; masking?: MaskingRuleConfig[] } = {}) {
  await initSqlParser();
  const policy = compilePolicy(o.rules ?? DEFAULT_RULES, { connectorType: 'postgres' });
  const masking = compileMasking(o.masking ?? DEFAULT_MASKING);
  if (!policy.ok || !masking.ok) throw new Error('compile');
  const { session, audit } = await authenticatedSession({ connector: { name: 'pg', type: 'postgres' }, policy: policy.value, masking: masking.value });
  t.ok(true, 'session authenticated');
  const [client, relaySide, closeClientPair] = await socketPair();
  const [upstream, upstreamPeer, closeUpstreamPair] = await socketPair();
  const peer = scriptedPeer<Frame>(
    upstreamPeer,
    copyingFramer(),
    (f) => f.type === F.Sync || f.type === F.Query || f.type === F.Flush || f.type === F.CopyDone || f.type === F.CopyFail,
    answer,
  );
  let received = Buffer.alloc(0);
  let closed = false;
  client.on('data', (c: Buffer) => (received = Buffer.concat([received, c])));
  client.on('close', () => (closed = true));
  client.on('error', () => {});
  const ended = new Promise<void>((resolve) => {
    new Relay(relaySide, upstream, session, {
      database: 'db',
      onParseError: 'deny',
      maxMessageBytes: 1 << 20,
      maxResultMessageBytes: 1 << 24,
      maxNamed: 100,
      catalog: null,
      maskingMode: 'restricted',
      log: silentLogger,
      onClose: resolve,
    }).start();
  });
  t.teardown(() => {
    closeClientPair();
    closeUpstreamPair();
  });
  /** Send, then wait until the client has `readyCount` ReadyForQuery messages or the socket closed. */
  async function send(bufs: Buffer[], readyCount: number): Promise<Frame[]> {
    client.write(Buffer.concat(bufs));
    const deadline = Date.now() + 3000;
    for (;;) {
      const got = frames(received);
      if (got.filter((f) => f.type === B.ReadyForQuery).length >= readyCount || closed || Date.now() > deadline) return got;
      await new Promise((r) => setTimeout(r, 5));
    }
  }
  return { audit, send, upstreamSeen: peer.seen, ended, isClosed: () => closed };
}

/** The relay's framer, copying frames out of the received chunk (the peer keeps them). */
function copyingFramer() {
  const f = new MessageFramer(1 << 24);
  return {
    push: (c: Buffer) => f.push(c),
    next: (): Frame | null => {
      const x = f.next();
      return x ? { type: x.type, bytes: Buffer.from(x.bytes) } : null;
    },
    get error() {
      return f.error;
    },
  };
}
