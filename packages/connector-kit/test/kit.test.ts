/**
 * The kit over real loopback sockets: the pump's back-pressure bounds what it holds when a
 * side is slow, a connector's wait stops reading that side, and ConnectorServer drains by
 * events (a session that ends early ends the stop early; one that does not is ended).
 */
import t from 'tap';
import { connect, createServer, type Socket } from 'node:net';
import { silentLogger } from '@gatehouse/core';
import { ConnectorServer, FramePump, cleartextTokenRefusal, type Framer } from '../src/index.js';
import { socketPair } from '../src/testing.js';

/** Frames are whole chunks: enough to exercise the pump's flow control. */
class ChunkFramer implements Framer<Buffer> {
  private chunks: Buffer[] = [];
  error: unknown = null;
  push(c: Buffer): void {
    this.chunks.push(c);
  }
  next(): Buffer | null {
    return this.chunks.shift() ?? null;
  }
}

/**
 * The four loopback sockets around a relay: caller ⇄ relay (client side) and relay (upstream
 * side) ⇄ upstream; all closed at teardown.
 */
async function relaySockets(t: { teardown(fn: () => void): void }) {
  const [callerEnd, relayClient, close1] = await socketPair();
  const [relayUpstream, upstreamEnd, close2] = await socketPair();
  t.teardown(() => {
    close1();
    close2();
  });
  return { callerEnd, relayClient, relayUpstream, upstreamEnd };
}

t.test('a slow caller pauses the upstream: the pump holds a bounded amount', async (t) => {
  const { callerEnd, relayClient, relayUpstream, upstreamEnd } = await relaySockets(t);
  const pump: FramePump<Buffer> = new FramePump<Buffer>(relayClient, relayUpstream, new ChunkFramer(), new ChunkFramer(), {
    onClientFrame: (f): void => pump.toUpstream(f),
    onUpstreamFrame: (f): void => pump.toClient(f),
    onFramingError: () => {},
    onInternalError: (_s, e) => t.fail(e.message),
    onSocketError: () => {},
    onClosed: () => {},
  });
  pump.start();
  callerEnd.pause(); // the caller reads nothing
  const chunk = Buffer.alloc(64 * 1024, 1);
  let written = 0;
  // Write until the upstream side's own buffer reports full: the relay stopped reading.
  for (let i = 0; i < 2000; i++) {
    written += chunk.length;
    if (!upstreamEnd.write(chunk)) {
      await new Promise((r) => setTimeout(r, 50));
      if (upstreamEnd.writableLength > 4 * chunk.length) break;
    }
  }
  await new Promise((r) => setTimeout(r, 200));
  t.ok(relayUpstream.isPaused(), 'the relay stopped reading the upstream');
  const held = relayClient.writableLength;
  t.ok(held < 16 * 1024 * 1024, `the relay holds ${held} bytes for the slow caller, not the ${written} written`);
  // The caller reads again: everything flows.
  let got = 0;
  callerEnd.on('data', (c: Buffer) => (got += c.length));
  callerEnd.resume();
  for (let i = 0; i < 200 && got < written; i++) await new Promise((r) => setTimeout(r, 25));
  t.equal(got, written, 'every byte arrives once the caller reads');
});

t.test('a connector that waits stops reading that side until its promise settles', async (t) => {
  const { callerEnd, relayClient, relayUpstream } = await relaySockets(t);
  let release: () => void = () => {};
  const seen: string[] = [];
  const pump: FramePump<Buffer> = new FramePump<Buffer>(relayClient, relayUpstream, new ChunkFramer(), new ChunkFramer(), {
    onClientFrame: (f): Promise<void> | void => {
      seen.push(f.toString());
      pump.toUpstream(f);
      if (f.toString() === 'wait') return new Promise<void>((r) => (release = r));
    },
    onUpstreamFrame: () => {},
    onFramingError: () => {},
    onInternalError: (_s, e) => t.fail(e.message),
    onSocketError: () => {},
    onClosed: () => {},
  });
  pump.start();
  callerEnd.write('wait');
  await new Promise((r) => setTimeout(r, 50));
  callerEnd.write('next');
  await new Promise((r) => setTimeout(r, 100));
  t.same(seen, ['wait'], 'the next frame is not read while the connector waits');
  release();
  await new Promise((r) => setTimeout(r, 100));
  t.same(seen, ['wait', 'next']);
});

t.test('ConnectorServer: stop() returns when the last session ends, or ends it when the drain time is up', async (t) => {
  const server = createServer();
  const listener = new ConnectorServer(server, silentLogger);
  const addr = await listener.listen('127.0.0.1:0');
  const [host, port] = [addr.slice(0, addr.lastIndexOf(':')), Number(addr.slice(addr.lastIndexOf(':') + 1))];
  const accepted: Socket[] = [];
  server.on('connection', (s: Socket) => {
    accepted.push(s);
    listener.track(new Promise<void>((r) => s.once('close', () => r())));
  });
  const c1 = connect(port, host);
  await new Promise((r) => c1.once('connect', r));
  await new Promise((r) => setTimeout(r, 20));
  t.equal(listener.connections, 1);
  // The session ends by itself 100 ms into a 5 s drain: stop returns early.
  setTimeout(() => c1.destroy(), 100);
  const t0 = Date.now();
  await listener.stop(5_000);
  t.ok(Date.now() - t0 < 2_000, `stop returned ${Date.now() - t0} ms after the last session ended`);

  const server2 = createServer();
  const listener2 = new ConnectorServer(server2, silentLogger);
  const addr2 = await listener2.listen('127.0.0.1:0');
  let ended = 0;
  server2.on('connection', (s: Socket) => listener2.track(new Promise<void>((r) => s.once('close', () => r()))));
  const c2 = connect(Number(addr2.slice(addr2.lastIndexOf(':') + 1)), '127.0.0.1');
  c2.on('error', () => {});
  await new Promise((r) => c2.once('connect', r));
  await new Promise((r) => setTimeout(r, 20));
  const t1 = Date.now();
  await listener2.stop(200, { endSessions: () => ended++ });
  t.equal(ended, 1, 'the session still open after the drain time was ended');
  t.ok(Date.now() - t1 >= 190, 'the drain time was given');
  t.equal(listener2.connections, 0, 'its socket is gone');
});

t.test('a token in clear text is refused off loopback only', async (t) => {
  t.equal(cleartextTokenRefusal({ address: '127.0.0.1', port: 1, tls: false }), null);
  t.equal(cleartextTokenRefusal({ address: '::ffff:127.0.0.1', port: 1, tls: false }), null);
  t.match(cleartextTokenRefusal({ address: '10.0.0.7', port: 1, tls: false }) ?? '', /TLS is required/);
  t.equal(cleartextTokenRefusal({ address: '10.0.0.7', port: 1, tls: true }), null);
});
