import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../../server/src/runtime.ts';
import { launchBrowser } from '../support/browser.ts';
import { testConfig, testLogger } from '../support/config.ts';
import { hasChromium } from '../support/services.ts';

describe.skipIf(!(await hasChromium()))('web client in Chromium', () => {
  let server: RunningServer;
  let browser: Browser;
  beforeAll(async () => {
    server = await startServer(testConfig(), testLogger());
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('is served by the gateway and shows that it is ready', async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(server.url);
    await expect.poll(() => page.textContent('[data-testid=readiness]')).toBe('Ready');
    expect(await page.textContent('h1')).toBe('MCP Gateway');
    expect(errors).toEqual([]);
  });

  it('answers client-side routes with the app, and unknown API routes with JSON 404', async () => {
    const page = await browser.newPage();
    const response = await page.goto(`${server.url}/threads/some-thread`);
    expect(response?.status()).toBe(200);
    expect(await page.textContent('h1')).toBe('MCP Gateway');
    const api = await fetch(`${server.url}/api/does-not-exist`);
    expect(api.status).toBe(404);
    expect(await api.json()).toMatchObject({ error: { code: 'not_found' } });
  });
});
