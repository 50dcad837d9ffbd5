/**
 * Human sign-in to the console, end to end: a real OpenID Provider (its own login form,
 * filled in by headless Chromium), the gateway's admin server, cookie sessions, CSRF and
 * Origin checks, roles from the ID token's groups, sign-out — and the bearer-token API
 * unchanged beside it.
 */
import t from 'tap';
import { launchBrowser, signIn } from './helpers/browser.js';
import { startConsoleGateway, TOKENS } from './helpers/console-gateway.js';

t.test('console sign-in, sessions, CSRF and roles', async (t) => {
  const cg = await startConsoleGateway();
  t.teardown(() => cg.stop());
  const browser = await launchBrowser();
  t.teardown(() => browser.close());
  const { origin } = cg;

  t.test('the console is served with its security headers, the API without a session is 401', async (t) => {
    const res = await fetch(`${origin}/ui/`);
    t.equal(res.status, 200);
    const csp = res.headers.get('content-security-policy') ?? '';
    t.match(csp, /default-src 'none'/);
    t.match(csp, /script-src 'self' 'wasm-unsafe-eval';/, 'no inline script');
    t.match(csp, /frame-ancestors 'none'/);
    t.equal(res.headers.get('x-frame-options'), 'DENY');
    t.match(await res.text(), /<script type="module" src="\/ui\/js\/app.js"><\/script>/);
    t.equal((await fetch(`${origin}/ui/vendor/asciinema-player.min.js`)).status, 200, 'the player is served from /ui/vendor/');
    t.equal((await fetch(`${origin}/ui/api/me`)).status, 401);
    t.equal((await fetch(`${origin}/ui/../package.json`)).status, 404, 'only known assets');
    const bearer = await fetch(`${origin}/api/v1/events`, { headers: { authorization: `Bearer ${TOKENS.auditor}` } });
    t.equal(bearer.status, 200, 'the bearer-token API works as before');
    const consoleApi = (token: string) => fetch(`${origin}/ui/api/sessions?decision=deny`, { headers: { authorization: `Bearer ${token}` } });
    t.equal((await consoleApi(TOKENS.auditor)).status, 200, "the console's read routes take a bearer token too");
    t.equal((await consoleApi(TOKENS.reviewer)).status, 403, 'with the same roles');
    t.equal((await fetch(`${origin}/ui/api/sessions?decision=maybe`, { headers: { authorization: `Bearer ${TOKENS.auditor}` } })).status, 400, 'a bad filter is a 400');
  });

  t.test('a reviewer signs in through the IdP form and lands on the approvals queue', async (t) => {
    const page = await browser.newPage();
    await signIn(page, origin, 'rita');
    await page.getByRole('heading', { name: 'Approvals' }).waitFor();
    t.equal(new URL(page.url()).pathname, '/ui/');
    t.match(await page.locator('#who-name').textContent(), 'rita (reviewer)');
    t.equal(cg.idp.tokenRequests(), 1, 'one code redeemed at the token endpoint');
    const cookies = await browser.context.cookies(origin);
    const session = cookies.find((c) => c.name === 'gatehouse_console');
    t.ok(session, 'a session cookie');
    t.equal(session?.httpOnly, true, 'HttpOnly');
    t.equal(session?.sameSite, 'Strict', 'SameSite=Strict');
    t.equal(session?.secure, false, 'not Secure: plain http on loopback only');
    t.notOk(
      cookies.find((c) => c.name === 'gatehouse_login'),
      'the login cookie is gone',
    );
    t.notOk(await page.locator('#nav a[data-section=sessions]').isVisible(), 'no sessions tab without the auditor role');
    await browser.screenshot(page, 'signin-reviewer-approvals');

    // The cookie authenticates the admin API too, with the identity's roles.
    const read = await page.evaluate(async () => {
      const r = await fetch('/api/v1/checkpoint');
      return r.status;
    });
    t.equal(read, 403, 'a reviewer is not an auditor');

    // CSRF: a state change with the cookie but without, or with a wrong, token is refused.
    const csrf = await page.evaluate(async () => {
      const me = (await (await fetch('/ui/api/me')).json()) as { csrf: string };
      const none = await fetch('/ui/logout', { method: 'POST' });
      const wrong = await fetch('/ui/logout', { method: 'POST', headers: { 'x-csrf-token': 'x'.repeat(43) } });
      const approveNone = await fetch('/api/v1/approvals/00000000-0000-4000-8000-000000000000/approve', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"reason":"x"}',
      });
      return { none: none.status, wrong: wrong.status, detail: ((await wrong.json()) as { detail: string }).detail, approveNone: approveNone.status, token: me.csrf };
    });
    t.equal(csrf.none, 403, 'no CSRF token: 403');
    t.equal(csrf.wrong, 403, 'wrong CSRF token: 403');
    t.match(csrf.detail, /CSRF/);
    t.equal(csrf.approveNone, 403, 'the approvals API refuses a cookie without the CSRF token');

    // From another origin, even with the right token (a stolen one), the Origin check refuses.
    const cookie = `gatehouse_console=${session!.value}`;
    const foreign = await fetch(`${origin}/ui/logout`, { method: 'POST', headers: { cookie, origin: 'http://evil.example', 'x-csrf-token': csrf.token } });
    t.equal(foreign.status, 403, 'a foreign Origin is refused');
    const noOrigin = await fetch(`${origin}/ui/logout`, { method: 'POST', headers: { cookie, 'x-csrf-token': csrf.token } });
    t.equal(noOrigin.status, 403, 'no Origin at all is refused');
    t.equal((await fetch(`${origin}/ui/api/me`, { headers: { cookie } })).status, 200, 'the session survived the refused attempts');

    // An event stream opened with the cookie before the sign-out must not outlive it.
    const stream = await fetch(`${origin}/api/v1/approvals/events`, { headers: { cookie } });
    t.equal(stream.status, 200, 'the event stream opens with the session cookie');
    const reader = stream.body!.getReader();
    await reader.read(); // the retry: line

    // Sign-out ends the session: the old cookie value no longer works.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('link', { name: 'Sign in with your identity provider' }).waitFor();
    t.equal((await fetch(`${origin}/ui/api/me`, { headers: { cookie } })).status, 401, 'the old cookie is dead');
    const ended = await Promise.race([
      (async () => {
        try {
          while (!(await reader.read()).done);
        } catch {
          // a reset stream is an ended stream
        }
        return true;
      })(),
      new Promise<boolean>((r) => setTimeout(() => r(false), 15_000)),
    ]);
    t.ok(ended, 'the open event stream was closed after the sign-out');
    const after = await fetch(`${origin}/api/v1/approvals?status=pending`, { headers: { cookie } });
    t.equal(after.status, 401, 'and the admin API refuses it');
    await page.close();
  });

  t.test('an auditor sees no approve button and the API refuses an approval', async (t) => {
    const page = await browser.newPage();
    await signIn(page, origin, 'alice');
    await page.getByRole('heading', { name: 'Approvals' }).waitFor();
    t.match(await page.locator('#who-name').textContent(), 'alice (auditor)');
    await page.getByText('approving and denying needs the reviewer role').waitFor();
    t.equal(await page.getByRole('button', { name: 'Approve' }).count(), 0, 'no approve button');
    const status = await page.evaluate(async () => {
      const me = (await (await fetch('/ui/api/me')).json()) as { csrf: string };
      const r = await fetch('/api/v1/approvals/00000000-0000-4000-8000-000000000000/approve', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-csrf-token': me.csrf },
        body: '{"reason":"looks fine"}',
      });
      return r.status;
    });
    t.equal(status, 403, 'with a valid CSRF token, the role check still refuses');
    t.ok(await page.locator('#nav a[data-section=integrity]').isVisible(), 'an auditor has the integrity page');
    await browser.screenshot(page, 'signin-auditor-approvals');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('link', { name: 'Sign in with your identity provider' }).waitFor();
    await page.close();
  });

  t.test('someone with no role gets a 403 page and no session', async (t) => {
    const page = await browser.newPage();
    const answers: number[] = [];
    page.on('response', (r) => {
      if (new URL(r.url()).pathname === '/ui/callback') answers.push(r.status());
    });
    await signIn(page, origin, 'bob');
    await page.getByRole('heading', { name: 'No access' }).waitFor();
    t.same(answers, [403]);
    t.notOk(
      (await browser.context.cookies(origin)).find((c) => c.name === 'gatehouse_console'),
      'no session cookie',
    );
    await browser.screenshot(page, 'signin-no-role');
    await page.close();
  });

  t.test('a callback without its sign-in attempt, or replayed, is refused', async (t) => {
    const res = await fetch(`${origin}/ui/callback?code=abc&state=def`);
    t.equal(res.status, 400);
    t.match(await res.text(), /Sign-in expired/);
  });

  t.test('console pages made no request off this machine', async (t) => {
    t.same(
      browser.external.filter((e) => e.startsWith(origin)),
      [],
    );
    t.same(
      browser.consoleErrors.filter((e) => e.startsWith(origin) && !/status of 40[13]/.test(e)),
      [],
      'no script errors or CSP violations on console pages',
    );
  });
});
