import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { CHROMIUM_PATH } from './services.ts';

/**
 * How long one browser step (a click, a wait) may take: well inside the 30 s test timeout,
 * so a step that never completes fails naming itself instead of timing the whole test out.
 */
const STEP_TIMEOUT_MS = 15_000;

/**
 * Headless Debian Chromium. The flags keep it off the network: this machine has none, and
 * background requests would otherwise be refused noisily. Every context it opens (also the
 * one behind `browser.newPage()`) has the step timeout above.
 */
export async function launchBrowser(): Promise<Browser> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  const newContext = browser.newContext.bind(browser);
  browser.newContext = async (options) => {
    const context = await newContext(options);
    context.setDefaultTimeout(STEP_TIMEOUT_MS);
    return context;
  };
  return browser;
}

/**
 * Signs in through the gateway's local sign-in page (no identity provider: the admin key)
 * by opening `path` signed out, and waits until the app is back on `path`.
 */
export async function signInLocally(page: Page, baseUrl: string, token: string, path = '/servers') {
  await page.goto(`${baseUrl}${path}`);
  await page.waitForURL((u) => u.pathname === '/auth/login');
  await page.fill('#token', token);
  await Promise.all([
    page.waitForURL((u) => u.pathname + u.search === path),
    page.click('button[type=submit]'),
  ]);
}

/** Saves a full-page screenshot as `dir/name.png` and returns its path. */
export async function screenshot(page: Page, dir: string, name: string): Promise<string> {
  const file = path.join(dir, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}
