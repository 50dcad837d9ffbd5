/**
 * The audit integrity page against a log edited behind the gateway's back: the verification
 * names the first bad sequence number; the agent's shipping position shows when its cursor
 * files are in data_dir/agent.
 */
import t from 'tap';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { launchBrowser, signIn } from './helpers/browser.js';
import { startConsoleGateway } from './helpers/console-gateway.js';

t.test('integrity page: a tampered log and the agent position', async (t) => {
  const cg = await startConsoleGateway();
  t.teardown(() => cg.stop());
  const base = { connector: 'x', protocol: 'postgres', session: '00000000-0000-4000-8000-00000000000a', identity: { subject: 'svc:a', issuer: 'static', groups: [] } };
  for (const text of ['select 11', 'select 12', 'select 13']) {
    await cg.gw.audit.append({ ...base, time: new Date().toISOString(), kind: 'unit', unit: { type: 'statement', text }, decision: { action: 'allow' } });
  }
  mkdirSync(join(cg.dataDir, 'agent'), { recursive: true });
  writeFileSync(
    join(cg.dataDir, 'agent', 'cursor-central.json'),
    JSON.stringify({ gateway_id: 'gw-1', state: { size: 2, hash: '0'.repeat(64), frontier: '' }, updated: new Date().toISOString() }),
  );

  const db = new Database(join(cg.dataDir, 'audit.db'));
  const changed = db.prepare(`update events set body = replace(body, 'select 12', 'select 99') where seq = 2`).run();
  db.close();
  t.equal(changed.changes, 1, 'one stored event edited');

  const browser = await launchBrowser();
  t.teardown(() => browser.close());
  const page = await browser.newPage();
  await signIn(page, cg.origin, 'alice');
  await page.getByRole('heading', { name: 'Approvals' }).waitFor();
  await page.getByRole('link', { name: 'Audit integrity' }).click();
  const verdict = page.locator('.verdict');
  await verdict.waitFor();
  t.match(await verdict.textContent(), /^FAILED at sequence 2/, 'the first bad sequence number');
  t.equal(await verdict.getAttribute('data-ok'), 'false');
  t.match(await page.locator('#agent').textContent(), /central2/, 'the sink and how far it shipped');
  await browser.screenshot(page, 'integrity-tampered');
});
