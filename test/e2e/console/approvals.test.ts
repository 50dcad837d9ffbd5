/**
 * The whole loop, end to end: a service's `DELETE FROM accounts WHERE …` sent with psql
 * through the PostgreSQL connector is held by a hold-mode review rule; a reviewer who signed
 * in through the IdP sees it arrive in the console's queue live (SSE, no reload), approves it
 * with a reason, and psql completes with the right row count. Then a denial from the console.
 */
import t from 'tap';
import { readEvents } from '@gatehouse/audit';
import { connectorsYaml, dbUpstream, postgresConnector } from '../../lib/postgres.js';
import { createTestDb, direct, psql } from '../postgres/pg-env.js';
import { launchBrowser, signIn } from './helpers/browser.js';
import { startConsoleGateway, TOKENS } from './helpers/console-gateway.js';

const DELETE = "DELETE FROM accounts WHERE region = 'eu'";

t.test('a held DELETE approved and denied in the console', async (t) => {
  const db = await createTestDb('console_ap');
  t.teardown(() => db.drop());
  const cg = await startConsoleGateway({
    yaml: connectorsYaml([
      postgresConnector({
        name: 'payments-db',
        upstream: dbUpstream(db, 'disable', { password: false }),
        rules: ['{ name: reviewed-deletes, match: { statement: [delete] }, action: review }'],
        extra: ['review: { reviewers: { groups: [dba] }, mode: hold, timeout: 60s }'],
      }),
    ]),
  });
  t.teardown(() => cg.stop());
  const reset = () =>
    direct(
      db,
      `DROP TABLE IF EXISTS accounts; CREATE TABLE accounts (id int PRIMARY KEY, region text);
       INSERT INTO accounts SELECT g, CASE WHEN g <= 3 THEN 'eu' ELSE 'us' END FROM generate_series(1, 10) g`,
    );
  const count = async () => (await direct<{ n: number }>(db, 'SELECT count(*)::int AS n FROM accounts')).rows[0].n;

  const browser = await launchBrowser();
  t.teardown(() => browser.close());
  const page = await browser.newPage();
  await signIn(page, cg.origin, 'rita');
  await page.getByRole('heading', { name: 'Approvals' }).waitFor();
  await page.locator('#live', { hasText: 'live' }).waitFor();
  await page.getByText('No pending requests.').waitFor();

  t.test('approved in the browser: psql completes with the row count', async (t) => {
    await reset();
    const running = psql(cg.address('payments-db'), TOKENS.billing, ['-c', DELETE], { sslmode: 'disable' });
    // Arrives through the event stream: the page is not reloaded.
    const card = page.locator('li.approval', { hasText: DELETE });
    await card.waitFor({ timeout: 20_000 });
    t.match(await card.textContent(), /svc:billing/, 'the requester');
    t.match(await card.textContent(), /reviewed-deletes/, 'the rule');
    t.equal(await count(), 10, 'nothing ran while held');
    await browser.screenshot(page, 'approvals-held-delete');

    await card.getByRole('button', { name: 'Approve' }).click();
    await card.getByText('A reason is required.').waitFor();
    await card.getByLabel('Reason (required)').fill('ticket OPS-42: cleanup of the EU test accounts');
    await card.getByRole('button', { name: 'Approve' }).click();
    const r = await running;
    t.equal(r.code, 0, r.stderr);
    t.equal(r.stdout.trim(), 'DELETE 3', 'psql reports the rows deleted');
    t.equal(await count(), 7);
    // The card follows the request to its end (approved, then used), and leaves the pending queue.
    await card.waitFor({ state: 'detached', timeout: 10_000 });
    await page.getByText('No pending requests.').waitFor();
    const trail = readEvents(cg.dataDir, { limit: 10_000 });
    const approved = trail.find((e) => (e.kind as string) === 'approval.approved');
    t.ok(approved, 'the approval is in the audit trail');
    t.match(JSON.stringify(approved), /rita/, 'by the reviewer who signed in');
    t.match(JSON.stringify(approved), /OPS-42/, 'with the reason');
    await page.getByLabel('Status').selectOption('used');
    await page.locator('li.approval', { hasText: DELETE }).getByText('ticket OPS-42').waitFor();
    await browser.screenshot(page, 'approvals-used');
    await page.getByLabel('Status').selectOption('pending');
    await page.getByText('No pending requests.').waitFor();
  });

  t.test('denied in the browser: psql gets an error naming the request', async (t) => {
    await reset();
    const running = psql(cg.address('payments-db'), TOKENS.billing, ['-c', DELETE], { sslmode: 'disable' });
    const card = page.locator('li.approval', { hasText: DELETE });
    await card.waitFor({ timeout: 20_000 });
    const id = await card.getAttribute('data-id');
    await card.getByLabel('Reason (required)').fill('not during the freeze');
    await card.getByRole('button', { name: 'Deny' }).click();
    const r = await running;
    t.not(r.code, 0);
    t.match(r.stderr, new RegExp(`${id}`), 'the error names the request');
    t.equal(await count(), 10, 'nothing deleted');
    await card.waitFor({ state: 'detached', timeout: 10_000 });
    // A notification's link opens the one request.
    await page.goto(`${cg.origin}/ui/approvals/${id}`);
    await page.getByRole('heading', { name: 'Approval request' }).waitFor();
    t.match(await page.locator('li.approval').textContent(), /denied by rita/);
    t.equal(await page.getByRole('button', { name: 'Approve' }).count(), 0, 'no buttons once decided');
    await browser.screenshot(page, 'approvals-denied');
  });

  t.test('no script errors, CSP violations or requests off this machine', async (t) => {
    t.same(
      browser.external.filter((e) => e.startsWith(cg.origin)),
      [],
    );
    t.same(
      browser.consoleErrors.filter((e) => e.startsWith(cg.origin) && !/status of 401/.test(e)),
      [],
    );
  });
});
