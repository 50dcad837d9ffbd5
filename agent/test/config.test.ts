/** The `gateway_id` and `agent` keys: defaults, every key honoured or refused at load, file rotation. */
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfig } from '@gatehouse/core';
import { startAgent } from '../src/index.js';
import { sinkNames } from '../src/sinks/index.js';
import { append, load, memLogger, openLog, tempDir, waitFor, writeConfig } from './helpers.js';

const parse = (o: Record<string, unknown>) => parseConfig(JSON.stringify({ data_dir: './var', ...o }), 'test.yaml');

t.test('defaults', async (t) => {
  const r = parse({
    agent: {
      sinks: [
        { type: 'file', path: 'x.jsonl' },
        { type: 'nats', url: 'nats://127.0.0.1:4222' },
        { type: 'http', url: 'https://siem/x', secret: 'x'.repeat(16) },
      ],
    },
  });
  if (!r.ok) throw r.error;
  t.match(r.value.gateway_id, /^[a-z0-9][a-z0-9_.-]*$/, 'gateway_id defaults to a valid id derived from the host name');
  const a = r.value.agent!;
  t.same({ b: a.batch_size, ra: a.read_ahead, p: a.poll_interval, rm: a.retry_max, rv: a.reverify_interval }, { b: 1000, ra: 20000, p: 200, rm: 30000, rv: 600000 });
  t.same(a.sinks[0], { type: 'file', path: 'x.jsonl', max_bytes: 104857600 });
  t.same(a.sinks[1], { type: 'nats', url: 'nats://127.0.0.1:4222', subject: 'gatehouse.audit', stream: 'GATEHOUSE_AUDIT' });
  t.same(a.sinks[2], { type: 'http', url: 'https://siem/x', secret: 'x'.repeat(16), timeout: 10000 });
  t.same(sinkNames([...a.sinks, { type: 'file', path: 'y', max_bytes: 4096 }]), ['file-0', 'nats', 'http', 'file-3']);
  t.equal(parse({}).ok, true, 'no agent block is fine for the gateway');
});

t.test('refused at load', async (t) => {
  const bad: Array<[Record<string, unknown>, RegExp]> = [
    [{ gateway_id: 'GW 1' }, /gateway_id: must match pattern/],
    [{ agent: {} }, /missing required key "sinks"/],
    [{ agent: { sinks: [] } }, /must NOT have fewer than 1 items/],
    [{ agent: { sinks: [{ type: 'kafka' }] } }, /must be one of: postgres, nats, http, file/],
    [{ agent: { sinks: [{ type: 'postgres' }] } }, /missing required key "url"/],
    [{ agent: { sinks: [{ type: 'postgres', url: 'mysql://x' }] } }, /url: must match pattern/],
    [{ agent: { sinks: [{ type: 'http', url: 'https://x', secret: 'short' }] } }, /secret: must NOT have fewer than 16 characters/],
    [{ agent: { sinks: [{ type: 'file', path: 'x', subject: 'a' }] } }, /unknown key "subject"/],
    [{ agent: { sinks: [{ type: 'file', path: 'x' }], batch_size: 0 } }, /batch_size: must be >= 1/],
    [{ agent: { sinks: [{ type: 'file', path: 'x' }], poll_interval: 'soon' } }, /must be a duration/],
    [{ agent: { sinks: [{ type: 'file', path: 'x' }], verifier_key: 'nope' } }, /verifier_key: must match pattern/],
    [{ agent: { sinks: [{ type: 'file', path: 'x' }], metrics_listen: 'localhost' } }, /metrics_listen: must match pattern/],
    [{ agent: { sinks: [{ type: 'file', path: 'x' }], bogus: 1 } }, /unknown key "bogus"/],
  ];
  for (const [cfg, msg] of bad) {
    const r = parse(cfg);
    t.equal(r.ok, false, JSON.stringify(cfg));
    if (!r.ok) t.match(r.error.message, msg);
  }
});

t.test('file sink rotates by size; state_dir, read_ahead, verifier_key and witness_name are honoured', async (t) => {
  const dir = tempDir(t);
  const log = await openLog(t, join(dir, 'var'));
  await append(log, 300);
  await log.close();
  const key = readFileSync(join(dir, 'var', 'audit-key.pub'), 'utf8').trim();
  const cfg = writeConfig(dir, {
    data_dir: './var',
    gateway_id: 'gw-file',
    agent: {
      batch_size: 20,
      read_ahead: 40,
      poll_interval: '20ms',
      reverify_interval: '100ms',
      state_dir: './state',
      verifier_key: key,
      witness_key: './w.pem',
      witness_name: 'my-witness',
      metrics_listen: '127.0.0.1:0',
      sinks: [{ type: 'file', name: 'archive', path: './out/audit.jsonl', max_bytes: 8192 }],
    },
  });
  const a = await startAgent(load(cfg), { logger: memLogger(), progress: false });
  t.ok(await waitFor(() => a.metrics.sink('archive').shippedSeq === 300), 'shipped');
  t.ok(a.metrics.bufferedEvents <= 40, 'never more than read_ahead events held');
  const metrics = await (await fetch(`http://${a.metricsAddress}/metrics`)).text();
  t.match(metrics, 'gatehouse_agent_shipped_seq{gateway_id="gw-file",sink="archive"} 300');
  await new Promise((r) => setTimeout(r, 300)); // a few periodic re-verifications
  t.equal(a.halted(), null, 'periodic re-verification of an intact log raises nothing');
  await a.stop();
  const files = readdirSync(join(dir, 'out'));
  t.ok(files.length > 3, `rotated into ${files.length} files`);
  const lines = files.flatMap((f) =>
    readFileSync(join(dir, 'out', f), 'utf8')
      .split('\n')
      .filter(Boolean),
  );
  const events = lines.map((l) => JSON.parse(l) as { type: string; seq?: number; cosignature?: string }).filter((r) => r.type === 'event');
  t.equal(new Set(events.map((e) => e.seq)).size, 300);
  t.ok(
    lines.some((l) => l.includes('"cosignature":"\u2014 my-witness ')),
    'checkpoints cosigned by witness_name',
  );
  t.ok(readdirSync(join(dir, 'state')).includes('cursor-archive.json'), 'cursor in state_dir');
  // A different pinned key is refused.
  const other = writeConfig(
    dir,
    { data_dir: './var', gateway_id: 'gw-file', agent: { state_dir: './state', verifier_key: key.replace(/\+[0-9a-f]{8}\+/, '+00000000+'), sinks: [{ type: 'file', path: 'x' }] } },
    'o.yaml',
  );
  await t.rejects(startAgent(load(other), { logger: memLogger(), progress: false }), /verifier_key differs from the key pinned/);
  const renamed = writeConfig(dir, { data_dir: './var', gateway_id: 'gw-other', agent: { state_dir: './state', sinks: [{ type: 'file', path: 'x' }] } }, 'r.yaml');
  await t.rejects(startAgent(load(renamed), { logger: memLogger(), progress: false }), /belongs to gateway_id "gw-file"/);
});
