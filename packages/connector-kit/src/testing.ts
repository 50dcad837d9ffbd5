/**
 * For connector unit tests (import from `@gatehouse/connector-kit/testing`): an in-memory
 * audit log, SessionServices wired from real engines, loopback socket pairs, and a scripted
 * peer that answers each batch of a connector's frames. Not used by the product.
 */
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import {
  Session,
  silentLogger,
  type AuditEventInput,
  type AuditSink,
  type GatehouseError,
  type Identity,
  type MaskingEngine,
  type PolicyEngine,
  type SessionServices,
} from '@gatehouse/core';
import type { Framer } from './pump.js';

/** The audit log as a list: a connector's contract with it is `append`, nothing else. */
export class MemoryAudit implements AuditSink {
  readonly events: AuditEventInput[] = [];
  failure: GatehouseError | null = null;
  constructor(readonly durability: 'strict' | 'batched' = 'strict') {}
  append(e: AuditEventInput): Promise<number> {
    this.events.push(e);
    return Promise.resolve(this.events.length);
  }
  units(): AuditEventInput[] {
    return this.events.filter((e) => e.kind === 'unit');
  }
}

export interface TestSessionOptions {
  connector: { name: string; type: string };
  policy: PolicyEngine;
  masking: MaskingEngine;
  identity?: Identity;
  audit?: MemoryAudit;
}

/** A Session already authenticated as `identity` (default svc:test in group payments). */
export async function authenticatedSession(o: TestSessionOptions): Promise<{ session: Session; audit: MemoryAudit }> {
  const identity = o.identity ?? { subject: 'svc:test', issuer: 'static', groups: ['payments'], claims: {} };
  const audit = o.audit ?? new MemoryAudit();
  const services: SessionServices = {
    connector: o.connector,
    allow: [{ subjects: [identity.subject] }],
    audit,
    authenticator: { authenticate: () => Promise.resolve({ ok: true as const, value: identity }) },
    policy: o.policy,
    masking: o.masking,
    recorder: null,
    metrics: null,
    logger: silentLogger,
  };
  const session = new Session(services, { address: '127.0.0.1', port: 1, tls: false });
  const r = await session.authenticate('test');
  if (!r.ok) throw new Error(`test session: ${r.error.message}`);
  return { session, audit };
}

/** Two connected loopback sockets: [the dialling end, the accepted end]. */
export async function socketPair(): Promise<[Socket, Socket, () => void]> {
  const server: Server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const accepted = new Promise<Socket>((r) => server.once('connection', r));
  const dialled = connect((server.address() as AddressInfo).port, '127.0.0.1');
  await new Promise((r) => dialled.once('connect', r));
  const other = await accepted;
  return [dialled, other, () => (dialled.destroy(), other.destroy(), server.close())];
}

/**
 * A peer that plays a server: frames what it receives with `framer`, and when `isBatchEnd`
 * says a batch is complete, writes `answer(batch, n)`. Keeps every frame it saw.
 */
export function scriptedPeer<F>(socket: Socket, framer: Framer<F>, isBatchEnd: (f: F) => boolean, answer: (batch: F[], n: number) => Buffer[]): { seen: F[] } {
  const seen: F[] = [];
  let batch: F[] = [];
  let n = 0;
  socket.on('data', (c: Buffer) => {
    framer.push(Buffer.from(c));
    let f: F | null;
    while ((f = framer.next()) !== null) {
      seen.push(f);
      batch.push(f);
      if (isBatchEnd(f)) {
        const replies = answer(batch, n++);
        batch = [];
        if (replies.length) socket.write(Buffer.concat(replies));
      }
    }
  });
  socket.on('error', () => {});
  return { seen };
}
