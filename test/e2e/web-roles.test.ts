import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../../server/src/runtime.ts';
import { launchBrowser, screenshot } from '../support/browser.ts';
import { tempDir, testConfig, testLogger } from '../support/config.ts';
import { startIdentityProvider } from '../support/idp.ts';
import { freePort } from '../support/mcp.ts';
import { ADMIN_TOKEN, api, grant } from '../support/server.ts';
import { hasChromium } from '../support/services.ts';

const everything = createRequire(import.meta.url).resolve(
  '@modelcontextprotocol/server-everything/dist/index.js',
);

// People who are not admins, signed in through the organisation's identity provider: the
// UI shows them what their role allows, and nothing of the administration.
describe.skipIf(!(await hasChromium()))('web UI: roles other than admin', () => {
  let gateway: RunningServer;
  let idp: Awaited<ReturnType<typeof startIdentityProvider>>;
  let browser: Browser;
  const shots = tempDir('gw-web-roles-');

  beforeAll(async () => {
    const port = await freePort();
    const clientSecret = randomBytes(16).toString('hex');
    idp = await startIdentityProvider({
      clientId: 'gateway',
      clientSecret,
      redirectUri: `http://127.0.0.1:${port}/auth/callback`,
    });
    gateway = await startServer(
      testConfig({
        PORT: String(port),
        ADMIN_BOOTSTRAP_TOKEN: ADMIN_TOKEN,
        OIDC_ISSUER: idp.issuer,
        OIDC_CLIENT_ID: 'gateway',
        OIDC_CLIENT_SECRET: clientSecret,
        OIDC_SCOPES: 'openid profile email groups',
        OIDC_ROLE_MAP: 'admin=gw-admins,auditor=auditors',
      }),
      testLogger(),
    );
    const admin = api(gateway.url, ADMIN_TOKEN);
    for (const [slug, name] of [
      ['alpha', 'Alpha'],
      ['beta', 'Beta'],
    ]) {
      const res = await admin.post('/api/servers', {
        slug,
        name,
        transport: { type: 'stdio', command: process.execPath, args: [everything, 'stdio'] },
      });
      expect(res.status).toBe(201);
    }
    await grant(admin, 'alpha', { subjectType: 'group', subject: 'staff', tools: ['echo'] });
    browser = await launchBrowser();
    console.info(`web UI role screenshots: ${shots}`);
  });
  afterAll(async () => {
    await browser?.close();
    await gateway?.stop();
    await idp?.close();
  });

  /** Opens `path` signed out and signs in at the identity provider as `login`. */
  async function signInAs(login: string, path: string): Promise<Page> {
    const page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
    await page.goto(`${gateway.url}${path}`);
    // The app finds no session and goes to /auth/login, which sends the browser to the identity provider.
    await page.waitForURL((u) => u.origin === idp.issuer);
    for (let step = 0; step < 6 && new URL(page.url()).origin === idp.issuer; step++) {
      if (await page.locator('input[name=login]').count()) {
        await page.fill('input[name=login]', login);
        await page.fill('input[name=password]', 'any');
      }
      await Promise.all([page.waitForLoadState(), page.click('button[type=submit]')]);
    }
    await page.waitForURL(`${gateway.url}${path}`);
    return page;
  }

  const navLinks = (page: Page) =>
    page.getByRole('navigation', { name: 'Main' }).getByRole('link').allTextContents();

  it('shows a user only their servers and their own access, no administration', async () => {
    const page = await signInAs('bob', '/servers');
    await page.locator('main h1').waitFor();
    await expect.poll(() => page.getByTestId('user-name').textContent()).toBe('Bob User');
    await expect.poll(() => page.getByTestId('user-role').textContent()).toBe('user');
    expect(await navLinks(page)).toEqual(['Chat', 'Servers', 'My access']);

    await page.locator('article[data-server="alpha"]').waitFor();
    expect(await page.locator('article[data-server]').count()).toBe(1);
    await expect.poll(() => page.locator('main').textContent()).not.toContain('Beta');
    await screenshot(page, shots, 'user-servers');

    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'My access' }).click();
    await page.getByRole('heading', { name: 'API keys', exact: true }).waitFor();
    expect(await page.getByLabel('All users').count()).toBe(0);
    await expect.poll(() => page.locator('main').textContent()).toContain('No API keys');

    await page.goto(`${gateway.url}/admin/servers`);
    await expect.poll(() => page.getByRole('alert').textContent()).toBe('This page is for admins only.');
    await page.goto(`${gateway.url}/audit`);
    await expect
      .poll(() => page.getByRole('alert').textContent())
      .toBe('This page is for admins and auditors only.');
  });

  it('lets an auditor read the audit trail but not administer', async () => {
    const page = await signInAs('carol', '/audit');
    await expect.poll(() => page.getByTestId('user-role').textContent()).toBe('auditor');
    expect(await navLinks(page)).toEqual(['Chat', 'Servers', 'My access', 'Threads', 'Audit']);
    await page.locator('table.audit-table tbody tr').first().waitFor();
    await expect.poll(() => page.locator('table.audit-table').textContent()).toContain('server.create');
    await screenshot(page, shots, 'auditor-audit');

    await page.goto(`${gateway.url}/admin/access-rules`);
    await expect.poll(() => page.getByRole('alert').textContent()).toBe('This page is for admins only.');
  });
});
