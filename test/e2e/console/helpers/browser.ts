/**
 * Headless Chromium (Debian's, driven by playwright-core) with a fresh profile, that
 * refuses every request off this machine and remembers which were tried from a console
 * page, plus the steps of signing in through the IdP's own login form.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export const ARTIFACTS = join(import.meta.dirname, '..', '..', '..', '..', 'artifacts', 'console');

export interface TestBrowser {
  context: BrowserContext;
  /** Requests to anything but 127.0.0.1 (refused), as `page URL -> request URL`. */
  external: string[];
  /** Console errors and CSP violations reported by pages. */
  consoleErrors: string[];
  newPage(): Promise<Page>;
  /** Save a screenshot under test/artifacts/console/ (git-ignored). */
  screenshot(page: Page, name: string): Promise<void>;
  close(): Promise<void>;
}

export async function launchBrowser(viewport = { width: 1280, height: 900 }): Promise<TestBrowser> {
  const profile = mkdtempSync(join(tmpdir(), 'gh-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport,
    timeout: 30_000,
  });
  context.setDefaultTimeout(15_000);
  const external: string[] = [];
  const consoleErrors: string[] = [];
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (url.hostname === '127.0.0.1' || url.protocol === 'data:' || url.protocol === 'blob:') return route.continue();
    let from = '?';
    try {
      from = route.request().frame().url();
    } catch {
      // a request of no frame (a worker): reported with '?'
    }
    external.push(`${from} -> ${url.href}`);
    return route.abort();
  });
  mkdirSync(ARTIFACTS, { recursive: true });
  const watch = (page: Page) => {
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(`${page.url()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => consoleErrors.push(`${page.url()}: ${e.message}`));
  };
  context.on('page', watch);
  return {
    context,
    external,
    consoleErrors,
    async newPage() {
      return context.newPage();
    },
    async screenshot(page, name) {
      await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
    },
    async close() {
      await context.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** As `user`, from the console's sign-in page through the IdP's login and consent forms back to the console. */
export async function signIn(page: Page, origin: string, user: string): Promise<void> {
  // A new person: forget the IdP's own session (it would sign the last one in again) and any console session.
  await page.context().clearCookies();
  await page.goto(`${origin}/ui/`);
  await page.getByRole('link', { name: 'Sign in with your identity provider' }).click();
  await page.locator('input[name=login]').fill(user);
  await page.locator('input[name=password]').fill('any-password');
  await page.getByRole('button', { name: 'Sign-in' }).click();
  await page.getByRole('button', { name: 'Continue' }).click();
}
