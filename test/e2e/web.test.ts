import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../../server/src/runtime.ts';
import { launchBrowser } from '../support/browser.ts';
import { testConfig, testLogger } from '../support/config.ts';
import { ADMIN_TOKEN } from '../support/server.ts';
import { hasChromium } from '../support/services.ts';

describe.skipIf(!(await hasChromium()))('web client in Chromium', () => {
  let server: RunningServer;
  let browser: Browser;
  beforeAll(async () => {
    server = await startServer(testConfig({ ADMIN_BOOTSTRAP_TOKEN: ADMIN_TOKEN }), testLogger());
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('is served by the gateway and sends a signed-out visitor to sign in', async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    // The page's HTML is read apart from the browser: the app sends a signed-out visitor on
    // to sign in at once, after which the browser may no longer hold the first response.
    const html = await fetch(server.url);
    expect(html.status).toBe(200);
    expect(await html.text()).toContain('<title>MCP Gateway</title>');
    const response = await page.goto(server.url);
    expect(response?.status()).toBe(200);
    await page.waitForURL((u) => u.pathname === '/auth/login' && u.searchParams.get('returnTo') === '/');
    expect(await page.textContent('h1')).toBe('Sign in');
    expect(errors).toEqual([]);
  });

  it('answers client-side routes with the app, and unknown API routes with JSON 404', async () => {
    const page = await browser.newPage();
    const html = await fetch(`${server.url}/threads/some-thread`);
    expect(html.status).toBe(200);
    expect(await html.text()).toContain('<div id="root">');
    const response = await page.goto(`${server.url}/threads/some-thread`);
    expect(response?.status()).toBe(200);
    await page.waitForURL((u) => u.searchParams.get('returnTo') === '/threads/some-thread');
    const api = await fetch(`${server.url}/api/does-not-exist`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    expect(api.status).toBe(404);
    expect(await api.json()).toMatchObject({ error: { code: 'not_found' } });
  });
});
