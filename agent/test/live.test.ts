/**
 * The agent beside a running writer: started before the log exists, tailing while events and
 * checkpoints (every second) are written; every checkpoint of the local log arrives centrally.
 */
import t from 'tap';
import { join } from 'node:path';
import { openReadOnly } from '@gatehouse/audit';
import { startAgent } from '../src/index.js';
import { append, centralSeqs, load, memLogger, openLog, pgDatabase, query, run, tempDir, waitFor, writeConfig } from './helpers.js';

t.test('started before the gateway, tails a live log with checkpoints every second', async (t) => {
  const dir = tempDir(t);
  const url = await pgDatabase(t);
  const cfg = writeConfig(dir, { data_dir: './var', gateway_id: 'gw-live', agent: { batch_size: 100, poll_interval: '20ms', sinks: [{ type: 'postgres', url }] } });
  const mem = memLogger();
  const starting = startAgent(load(cfg), { logger: mem, progress: false });
  await new Promise((r) => setTimeout(r, 300));
  const log = await openLog(t, join(dir, 'var'), 1);
  const a = await starting;
  t.ok(
    mem.lines.some((l) => /waiting for the gateway/.test(l.msg)),
    'waited for the log',
  );
  for (let i = 0; i < 30; i++) {
    await append(log, 100, i * 100, 100);
    await new Promise((r) => setTimeout(r, 100));
  }
  await log.close();
  const db = openReadOnly(join(dir, 'var'))!;
  const localCps = (db.prepare('SELECT count(*) AS n FROM checkpoints').get() as { n: number }).n;
  db.close();
  t.ok(localCps >= 3, `${localCps} checkpoints written while shipping`);
  t.ok(
    await waitFor(async () => {
      const [c] = await query<{ n: string }>(url, "SELECT count(*) AS n FROM gatehouse.checkpoints WHERE gateway_id = 'gw-live'");
      return (await centralSeqs(url, 'gw-live')).count === 3000 && Number(c.n) === localCps;
    }),
    'every event and every checkpoint shipped',
  );
  t.equal(a.halted(), null);
  await a.stop();
  const v = await run(['audit', 'verify', '-c', cfg, '--central', url]);
  t.equal(v.code, 0, v.output);
  t.match(v.output, `ok: gw-live: 3000 events (3000 under a signed checkpoint), ${localCps} checkpoints verified`);
});
