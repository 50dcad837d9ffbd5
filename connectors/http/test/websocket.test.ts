import t from 'tap';
import { createRequire } from 'node:module';
import { startHarness, startUpstream, testMasker, TOKEN, units, until, type Harness } from './harness.js';

// `ws` is installed (as a dependency of tap's tooling) but ships no types; the few calls used here are typed locally.
interface WsSocket {
  on(ev: 'message', cb: (data: Buffer, isBinary: boolean) => void): void;
  on(ev: 'open' | 'close', cb: () => void): void;
  on(ev: 'error', cb: (e: Error) => void): void;
  on(ev: 'unexpected-response', cb: (req: unknown, res: { statusCode: number }) => void): void;
  send(data: string | Buffer): void;
  close(): void;
}
interface WsModule {
  WebSocket: new (url: string, opts?: { headers?: Record<string, string> }) => WsSocket;
  WebSocketServer: new (opts: { noServer: true }) => {
    handleUpgrade(req: unknown, socket: unknown, head: Buffer, cb: (ws: WsSocket & { protocol: string }) => void): void;
    close(): void;
  };
}
const { WebSocket, WebSocketServer } = createRequire(import.meta.url)('ws') as WsModule;

t.test('WebSocket upgrade is authenticated, relayed, and audited as one unit', async (t) => {
  const wss = new WebSocketServer({ noServer: true });
  const seenAuth: (string | undefined)[] = [];
  const up = await startUpstream((_req, res) => res.end('plain'));
  up.server.on('upgrade', (req, socket, head) => {
    seenAuth.push(req.headers.authorization);
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('message', (data, isBinary) => ws.send(isBinary ? data : `echo:${data.toString()}`));
    });
  });
  const h = await startHarness({ upstream: up.url, extraYaml: '      credential: { type: bearer, token: "upstream-ws-secret" }' });
  t.teardown(async () => {
    wss.close();
    await h.stop();
    await up.close();
  });

  const ws = new WebSocket(`ws://${h.host}:${h.port}/stream`, { headers: { authorization: `Bearer ${TOKEN}` } });
  const got: string[] = [];
  await new Promise<void>((resolve, reject) => {
    ws.on('error', reject);
    ws.on('open', () => {
      ws.send('one');
      ws.send('two');
      ws.send(Buffer.alloc(70_000, 1)); // 64-bit length frame
    });
    ws.on('message', (d) => {
      got.push(d.length > 100 ? `bin:${d.length}` : d.toString());
      if (got.length === 3) ws.close();
    });
    ws.on('close', () => resolve());
  });
  t.same(got, ['echo:one', 'echo:two', 'bin:70000']);
  t.same(seenAuth, ['Bearer upstream-ws-secret'], 'upstream credential injected, caller token removed');
  await until(() => h.events.some((e) => e.kind === 'session.end'));
  const ev = units(h.events)[0];
  t.equal(ev.unit?.text, 'GET /stream');
  t.equal(ev.result?.status, 101);
  const wsStats = (ev.unit?.attributes as { websocket: Record<'messages_up' | 'messages_down' | 'bytes_up' | 'bytes_down' | 'control_frames', number> }).websocket;
  t.equal(wsStats.messages_up, 3);
  t.equal(wsStats.messages_down, 3);
  t.ok(wsStats.bytes_up > 70_000);
  t.ok(wsStats.bytes_down > 70_000);
  t.ok(wsStats.control_frames >= 2, 'close frames counted apart');
  const order = h.events.map((e) => e.kind);
  t.ok(order.indexOf('unit') < order.indexOf('session.end'), 'unit recorded before the session ends');
});

/** An upstream that counts the upgrades reaching it (none should) and refuses them. */
async function refusingUpstream() {
  const up = await startUpstream((_req, res) => res.end());
  const counter = { upgrades: 0 };
  up.server.on('upgrade', (_req, socket: { destroy(): void }) => {
    counter.upgrades++;
    socket.destroy();
  });
  return { up, counter };
}

/** The HTTP status a WebSocket upgrade through the connector gets (101 when it opens, -1 on a network error). */
function upgradeStatus(h: Harness, path: string, headers?: Record<string, string>): Promise<number> {
  return new Promise<number>((resolve) => {
    const ws = new WebSocket(`ws://${h.host}:${h.port}${path}`, { headers });
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode));
    ws.on('error', () => resolve(-1));
    ws.on('open', () => resolve(101));
  });
}

t.test('WebSocket without a token, or denied by policy, is refused', async (t) => {
  const { up, counter } = await refusingUpstream();
  const h = await startHarness({ upstream: up.url, decide: (u) => (u.match.path === '/admin' ? { action: 'deny', rule: 'no-admin-ws' } : { action: 'allow' }) });
  t.teardown(async () => {
    await h.stop();
    await up.close();
  });
  t.equal(await upgradeStatus(h, '/x'), 401);
  t.equal(await upgradeStatus(h, '/admin', { authorization: `Bearer ${TOKEN}` }), 403);
  t.equal(counter.upgrades, 0);
  await until(() => units(h.events).length >= 1);
  t.same(units(h.events)[0].decision, { action: 'deny', rule: 'no-admin-ws' });
});

t.test('WebSocket upgrade by a masked caller is refused: frames cannot be masked', async (t) => {
  const { up, counter } = await refusingUpstream();
  const h = await startHarness({ upstream: up.url, masker: testMasker });
  t.teardown(async () => {
    await h.stop();
    await up.close();
  });
  t.equal(await upgradeStatus(h, '/stream', { authorization: `Bearer ${TOKEN}` }), 403);
  t.equal(counter.upgrades, 0, 'never reached the upstream');
  await until(() => units(h.events).length >= 1);
  t.match(units(h.events)[0].result, { status: 403, error: /cannot be masked/ });
});
