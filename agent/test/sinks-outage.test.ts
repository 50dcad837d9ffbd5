/**
 * Sinks that go away: our own nats-server stopped mid-shipping and started again on the same
 * store; an HTTP SIEM answering 500 for a while. Nothing is lost, nothing is sent twice to
 * the stream, every HTTP batch carries a valid HMAC.
 */
import t from 'tap';
import { createServer, type IncomingMessage } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { signBody, SIGNATURE_HEADER, startAgent, TIMESTAMP_HEADER } from '../src/index.js';
import { append, load, memLogger, Nats, openLog, tempDir, waitFor, writeConfig } from './helpers.js';

t.test('NATS stopped during shipping and started again: every event once in the stream', async (t) => {
  const N = 20_000;
  const dir = tempDir(t);
  const nats = await Nats.start(t);
  const log = await openLog(t, join(dir, 'var'));
  await append(log, N);
  const cfg = writeConfig(dir, {
    data_dir: './var',
    gateway_id: 'gw-nats',
    agent: { batch_size: 200, poll_interval: '20ms', retry_max: '500ms', sinks: [{ type: 'nats', url: nats.url, subject: 'outage', stream: 'OUTAGE' }] },
  });
  const mem = memLogger();
  const a = await startAgent(load(cfg), { logger: mem, progress: false });
  t.ok(await waitFor(() => a.metrics.sink('nats').shippedSeq >= 2000, 30_000), 'shipping');
  await nats.stop();
  const atStop = a.metrics.sink('nats').shippedSeq;
  t.ok(atStop < N, `stopped mid-way at ${atStop}`);
  // Events keep arriving while NATS is down.
  await append(log, 1000, N);
  t.ok(await waitFor(() => a.metrics.sink('nats').errors >= 3, 20_000), 'writes fail and are retried');
  t.equal(a.metrics.sink('nats').shippedSeq, atStop, 'the cursor does not move while the sink is down');
  await nats.start();
  t.ok(await waitFor(() => a.metrics.sink('nats').shippedSeq === N + 1000, 60_000), 'caught up');
  t.ok(mem.lines.some((l) => l.msg === 'sink recovered'));
  await a.stop();
  await log.close();
  const nc = await connect({ servers: nats.url });
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info('OUTAGE', { subjects_filter: 'outage.gw-nats.event' });
  t.equal(info.state.subjects?.['outage.gw-nats.event'], N + 1000, 'each event exactly once');
  await nc.close();
});

function body(req: IncomingMessage): Promise<string> {
  return new Promise((res) => {
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => res(Buffer.concat(parts).toString('utf8')));
  });
}

t.test('HTTP SIEM answering 500 or not at all for a while: all batches delivered, HMAC verified', async (t) => {
  const N = 3000;
  const secret = 'siem-secret-0123456789';
  const dir = tempDir(t);
  const seqs = new Map<number, number>();
  let requests = 0;
  let badSignatures = 0;
  let failing = true;
  const server = createServer((req, res) => {
    void body(req).then((text) => {
      requests++;
      const ts = String(req.headers[TIMESTAMP_HEADER]);
      const want = Buffer.from(signBody(secret, ts, text));
      const got = Buffer.from(String(req.headers[SIGNATURE_HEADER]));
      if (got.length !== want.length || !timingSafeEqual(got, want) || Math.abs(Date.now() / 1000 - Number(ts)) > 300) {
        badSignatures++;
        return res.writeHead(401).end();
      }
      if (failing && requests % 2 === 0) return; // no answer at all: the sink's timeout must end the attempt
      if (failing) return res.writeHead(500).end();
      for (const line of text.split('\n').filter(Boolean)) {
        const r = JSON.parse(line) as { type: string; seq?: number };
        if (r.type === 'event') seqs.set(r.seq!, (seqs.get(r.seq!) ?? 0) + 1);
      }
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const port = (server.address() as { port: number }).port;
  const log = await openLog(t, join(dir, 'var'));
  await append(log, N);
  await log.close();
  const cfg = writeConfig(dir, {
    data_dir: './var',
    gateway_id: 'gw-http',
    agent: { batch_size: 250, poll_interval: '20ms', retry_max: '200ms', sinks: [{ type: 'http', url: `http://127.0.0.1:${port}/ingest`, secret, timeout: '300ms' }] },
  });
  const a = await startAgent(load(cfg), { logger: memLogger(), progress: false });
  t.ok(await waitFor(() => requests >= 8, 20_000), 'the SIEM is being retried');
  t.equal(a.metrics.sink('http').shippedSeq, 0, 'nothing counts as shipped while it answers 500');
  failing = false;
  t.ok(await waitFor(() => a.metrics.sink('http').shippedSeq === N, 30_000), 'all delivered after recovery');
  await a.stop();
  t.equal(badSignatures, 0, 'every request carries a valid HMAC');
  t.equal(seqs.size, N, 'every event received');
  t.equal([...seqs.values()].filter((c) => c > 1).length, 0, 'none twice (only acknowledged batches advance)');
  t.ok(a.metrics.sink('http').errors >= 8);
});
