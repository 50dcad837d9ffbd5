/**
 * Two gateways (two data_dirs, two gateway_ids, two signing keys) and two agents into one
 * central store; verify --central passes for both, and the agents' cosignatures verify.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startAgent, verifyCentral } from '../src/index.js';
import { append, centralSeqs, load, memLogger, openLog, pgDatabase, query, run, tempDir, waitFor, writeConfig } from './helpers.js';

t.test('two gateways, two agents, one central store, witnessed', async (t) => {
  const url = await pgDatabase(t);
  const agents = [];
  const cfgs: string[] = [];
  for (const [i, gw] of ['gw-a', 'gw-b'].entries()) {
    const dir = tempDir(t);
    const log = await openLog(t, join(dir, 'var'));
    await append(log, 1000 + i * 500, 0, 500);
    await log.close();
    const cfg = writeConfig(dir, {
      data_dir: './var',
      gateway_id: gw,
      agent: { poll_interval: '20ms', witness_key: './witness.pem', sinks: [{ type: 'postgres', url }] },
    });
    cfgs.push(cfg);
    agents.push(await startAgent(load(cfg), { logger: memLogger(), progress: false }));
  }
  t.ok(await waitFor(async () => (await centralSeqs(url, 'gw-a')).count === 1000 && (await centralSeqs(url, 'gw-b')).count === 1500), 'both shipped');
  for (const a of agents) await a.stop();
  const keys = await query<{ gateway_id: string; verifier_key: string }>(url, 'SELECT gateway_id, verifier_key FROM gatehouse.gateways ORDER BY gateway_id');
  t.equal(keys.length, 2);
  t.not(keys[0].verifier_key, keys[1].verifier_key, 'each gateway its own key');

  const v = await run(['audit', 'verify', '--central', url]);
  t.equal(v.code, 0, v.output);
  t.match(v.output, 'ok: gw-a: 1000 events');
  t.match(v.output, 'ok: gw-b: 1500 events');

  const witnessA = readFileSync(join(cfgs[0], '..', 'witness.pem.pub'), 'utf8').trim();
  t.match(witnessA, /^gatehouse-agent\/gw-a\+[0-9a-f]{8}\+/);
  const w = await run(['audit', 'verify', '--central', url, '--gateway', 'gw-a', '--witness-key', witnessA]);
  t.equal(w.code, 0, w.output);
  t.match(w.output, /ok: gw-a: 1000 events \(1000 under a signed checkpoint\), \d+ checkpoints verified, \d+ cosigned/);
  // gw-b's checkpoints are not cosigned by gw-a's agent.
  const wrong = await verifyCentral(url, { gateway: 'gw-b', witnessKeys: [witnessA] });
  t.equal(wrong[0].ok, false);
  t.match(wrong[0].reason, /no cosignature by a given witness key/);

  // A central row rewritten by someone who can bypass the trigger: verify names it.
  await query(url, "SET session_replication_role = replica; UPDATE gatehouse.events SET body = replace(body, 'SELECT 1', 'SELECT 9') WHERE gateway_id = 'gw-b' AND seq = 700");
  const bad = await run(['audit', 'verify', '--central', url]);
  t.equal(bad.code, 1);
  t.match(bad.output, 'FAILED gw-b at seq 700');
  t.match(bad.output, 'ok: gw-a');
});
