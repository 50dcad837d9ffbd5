/**
 * 100,000 events to PostgreSQL, NATS JetStream and a file through the real CLI; the agent is
 * killed with SIGKILL mid-way and restarted: the central set is exactly the local set (no gap,
 * no duplicate row), the stream holds each event once, the file each line once.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { openReadOnly, verifyLog } from '@gatehouse/audit';
import { append, centralSeqs, cli, Nats, openLog, pgDatabase, query, run, tempDir, waitFor, writeConfig } from './helpers.js';

const N = 100_000;

t.test('kill -9 mid-way, restart: central == local, JetStream de-duplicates, file exact', async (t) => {
  const dir = tempDir(t);
  const dataDir = join(dir, 'var');
  const url = await pgDatabase(t);
  const nats = await Nats.start(t);
  const log = await openLog(t, dataDir);
  await append(log, N);
  await log.close();
  const local = verifyLog(dataDir);
  t.ok(local.ok, 'the local log verifies');
  t.equal(local.size, N);

  const cfg = writeConfig(dir, {
    data_dir: './var',
    gateway_id: 'gw-crash',
    agent: {
      batch_size: 500,
      poll_interval: '50ms',
      sinks: [
        { type: 'postgres', url },
        { type: 'nats', url: nats.url, subject: 'test.audit', stream: 'CRASH' },
        { type: 'file', path: './shipped/audit.jsonl' },
      ],
    },
  });
  const first = cli(['agent', '-c', cfg]);
  t.teardown(() => first.proc.kill('SIGKILL'));
  const midway = await waitFor(async () => (await centralSeqs(url, 'gw-crash')).count >= 20_000, 60_000);
  t.ok(midway, 'shipping under way');
  first.proc.kill('SIGKILL');
  await first.exited;
  const before = await centralSeqs(url, 'gw-crash');
  t.ok(before.count < N, `killed mid-way (${before.count} shipped)`);

  const second = cli(['agent', '-c', cfg]);
  t.teardown(() => second.proc.kill('SIGKILL'));
  const done = await waitFor(async () => (await centralSeqs(url, 'gw-crash')).count >= N, 90_000);
  t.ok(done, second.stderr().slice(-2000));
  // The file and stream sinks catch up too.
  const filePath = join(dir, 'shipped/audit.jsonl');
  await waitFor(() => {
    try {
      return (
        readFileSync(filePath, 'utf8')
          .split('\n')
          .filter((l) => l.startsWith('{"type":"event"')).length >= N
      );
    } catch {
      return false;
    }
  }, 60_000);
  const nc = await connect({ servers: nats.url });
  const jsm = await jetstreamManager(nc);
  const eventsInStream = async () => (await jsm.streams.info('CRASH', { subjects_filter: 'test.audit.gw-crash.event' })).state.subjects?.['test.audit.gw-crash.event'] ?? 0;
  await waitFor(async () => (await eventsInStream()) >= N, 60_000);
  second.proc.kill('SIGTERM');
  t.equal(await second.exited, 0, 'clean exit on SIGTERM');

  const c = await centralSeqs(url, 'gw-crash');
  t.same(c, { count: N, distinct: N, min: 1, max: N }, 'central: every seq once, no gap');
  // Same bodies, same hashes, row for row.
  const db = openReadOnly(dataDir)!;
  const localRows = db.prepare('SELECT seq, body, hash FROM events ORDER BY seq').all() as Array<{ seq: number; body: string; hash: Buffer }>;
  db.close();
  const central = await query<{ seq: string; body: string; hash: Buffer }>(url, 'SELECT seq, body, hash FROM gatehouse.events WHERE gateway_id = $1 ORDER BY seq', ['gw-crash']);
  let same = 0;
  for (let i = 0; i < N; i++) if (Number(central[i].seq) === localRows[i].seq && central[i].body === localRows[i].body && central[i].hash.equals(localRows[i].hash)) same++;
  t.equal(same, N, 'central rows equal local rows');
  const cps = await query<{ n: string }>(url, 'SELECT count(*) AS n FROM gatehouse.checkpoints WHERE gateway_id = $1', ['gw-crash']);
  t.ok(Number(cps[0].n) >= 1, 'checkpoints shipped');

  t.equal(await eventsInStream(), N, 'JetStream holds each event exactly once');
  await nc.close();

  const lines = readFileSync(filePath, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{"type":"event"'));
  const seqs = lines.map((l) => (JSON.parse(l) as { seq: number }).seq);
  t.equal(lines.length, N, 'file: one line per event (the unacknowledged tail was cut back on restart)');
  t.equal(new Set(seqs).size, N);
  t.equal(Math.max(...seqs), N);

  // The central store on its own, and the local log against it (one command does both).
  const v = await run(['audit', 'verify', '-c', cfg, '--central', url]);
  t.equal(v.code, 0, v.output);
  t.match(v.output, `ok: gw-crash: ${N} events`);
  t.match(v.output, `holds the ${N} events shipped`);
});
