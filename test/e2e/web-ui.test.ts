import { createRequire } from 'node:module';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, screenshot, signInLocally } from '../support/browser.ts';
import { tempDir } from '../support/config.ts';
import { ADMIN_TOKEN, useServer } from '../support/server.ts';
import { hasChromium } from '../support/services.ts';

const everything = createRequire(import.meta.url).resolve(
  '@modelcontextprotocol/server-everything/dist/index.js',
);

// One admin's session through the whole web UI, in order: each step builds on the last
// (the server registered first is the one the later steps use).
describe.skipIf(!(await hasChromium()))('web UI: an admin in Chromium', () => {
  const state = useServer();
  const shots = tempDir('gw-web-shots-');
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let url: string;
  const errors: string[] = [];

  beforeAll(async () => {
    url = state.server.url;
    browser = await launchBrowser();
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: url });
    page = await context.newPage();
    page.on('pageerror', (e) => errors.push(e.message));
    console.info(`web UI screenshots: ${shots}`);
  });
  afterAll(async () => {
    await browser?.close();
  });

  const main = () => page.locator('main');
  const heading = () => page.locator('main h1');
  const nav = (name: string, exact = true) =>
    page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name, exact });
  const card = (slug: string) => page.locator(`article[data-server="${slug}"]`);

  it('sends a signed-out visitor to sign in, then back to the page they asked for', async () => {
    await signInLocally(page, url, ADMIN_TOKEN, '/admin/servers');
    await expect.poll(() => heading().textContent()).toBe('Admin · Servers');
    await expect.poll(() => page.getByTestId('user-name').textContent()).toBe('Administrator');
    await expect.poll(() => page.getByTestId('user-role').textContent()).toBe('admin');
    expect(await nav('Admin: Access rules').count()).toBe(1);
    expect(await nav('Audit').count()).toBe(1);
    await expect.poll(() => main().textContent()).toContain('No servers registered');
  });

  it('registers a stdio server through the admin form, naming the fields it rejects', async () => {
    await page.getByRole('link', { name: 'Add server' }).click();
    await expect.poll(() => heading().textContent()).toBe('Add server');

    // A bad slug and no name: the API's issues show up at their fields.
    await page.getByLabel('Slug').fill('Bad Slug');
    await page.getByLabel('Command').fill(process.execPath);
    await page.getByRole('button', { name: 'Create server' }).click();
    await page.getByRole('alert').filter({ hasText: 'body.slug' }).waitFor();
    expect(await page.getByLabel('Slug').getAttribute('aria-invalid')).toBe('true');
    await expect
      .poll(() => page.locator('.field-error').first().textContent())
      .toMatch(/lowercase letters, digits/);

    // JSON fields are checked before anything is sent.
    await page.getByLabel('Arguments (JSON array)').fill('[not json');
    await page.getByRole('button', { name: 'Create server' }).click();
    await page.getByText(/body\.transport\.args/).waitFor();
    await expect.poll(() => main().textContent()).toContain('is not valid JSON');

    await page.getByLabel('Slug').fill('everything');
    await page.getByLabel('Name').fill('Everything');
    await page.getByLabel('Description').fill('The MCP reference test server.');
    await page.getByLabel('Arguments (JSON array)').fill(JSON.stringify([everything, 'stdio']));
    await page.getByRole('button', { name: 'Add credential field' }).click();
    await page.getByLabel('Variable name').fill('API_TOKEN');
    await page.getByLabel('Label', { exact: true }).fill('API token');
    await page.getByLabel('Help text').fill('Your personal token for the test server.');
    await screenshot(page, shots, 'server-form');
    await page.getByRole('button', { name: 'Create server' }).click();

    await page.waitForURL(`${url}/admin/servers?created=everything`, { timeout: 20_000 });
    await expect
      .poll(() => page.getByRole('status').filter({ hasText: 'was created' }).textContent())
      .toContain('Server “everything” was created.');
    // Discovery runs as the admin, who has not stored the required API_TOKEN yet: the card says so.
    await expect
      .poll(() => card('everything').getByRole('note').textContent())
      .toMatch(/^Discovery failed: .*API_TOKEN/);
    await expect.poll(() => card('everything').textContent()).toContain('Each user supplies: API_TOKEN');
    await screenshot(page, shots, 'admin-servers-discovery-failed');
  });

  it('stores credential values without ever showing them back', async () => {
    await nav('Servers').click();
    await expect.poll(() => heading().textContent()).toBe('Servers');
    const c = card('everything');
    const status = c.getByTestId('credential-status');
    await expect.poll(() => status.textContent()).toBe('No values stored.');
    const field = c.getByLabel('API token');
    expect(await field.getAttribute('type')).toBe('password');

    await c.getByRole('button', { name: 'Save values' }).click();
    await c.getByRole('alert').waitFor();
    await expect.poll(() => c.getByRole('alert').textContent()).toContain('body.values.API_TOKEN');
    expect(await field.getAttribute('aria-invalid')).toBe('true');

    await field.fill('s3cret-value-xyz');
    await c.getByRole('button', { name: 'Save values' }).click();
    await c.getByText('Saved. Your next connections to Everything use these values.').waitFor();
    await expect.poll(() => status.textContent()).toMatch(/^Stored: API_TOKEN/);
    expect(await field.inputValue()).toBe('');
    expect(await field.getAttribute('placeholder')).toBe('stored — type to replace');
    await page.reload();
    await card('everything').getByTestId('credential-status').waitFor();
    expect(await page.content()).not.toContain('s3cret-value-xyz');
  });

  it('disables and re-enables a server, and discovers its capabilities', async () => {
    await nav('Admin: Servers').click();
    await expect.poll(() => heading().textContent()).toBe('Admin · Servers');
    const c = card('everything');
    await c.getByRole('button', { name: 'Disable' }).click();
    await c.getByText('disabled', { exact: true }).waitFor();
    await c.getByRole('button', { name: 'Enable' }).click();
    await c.getByText('enabled', { exact: true }).waitFor();
    await c.getByRole('button', { name: 'Discover capabilities' }).click();
    await c.getByRole('button', { name: 'Discover capabilities' }).waitFor();
    await expect
      .poll(() => c.getByTestId('capability-counts').textContent())
      .toMatch(/^[1-9]\d* tools · [1-9]\d* resources · [1-9]\d* prompts · checked/);
    expect(await c.getByRole('note').count()).toBe(0);
    await screenshot(page, shots, 'admin-servers');
  });

  it('shows the catalog: endpoints to copy and expandable capabilities', async () => {
    await nav('Servers').click();
    await expect.poll(() => heading().textContent()).toBe('Servers');
    expect(
      await page.getByRole('textbox', { name: 'All your servers (aggregate endpoint)' }).inputValue(),
    ).toBe(`${url}/mcp`);
    const c = card('everything');
    await expect.poll(() => c.getByRole('heading', { level: 2 }).textContent()).toBe('Everything');
    await expect.poll(() => c.textContent()).toContain('The MCP reference test server.');
    await expect
      .poll(() => c.locator('.transport').textContent())
      .toMatch(/^Transport: stdio · node .*server-everything\/dist\/index\.js stdio$/);
    expect(await c.getByRole('textbox', { name: 'Endpoint' }).inputValue()).toBe(`${url}/mcp/everything`);
    await c.getByRole('button', { name: 'Copy Endpoint' }).click();
    await c.getByText('Copied', { exact: true }).waitFor();
    expect(await page.evaluate('navigator.clipboard.readText()')).toBe(`${url}/mcp/everything`);

    const tools = c.locator('details', { has: page.locator('summary', { hasText: /^Tools/ }) });
    expect(await tools.locator('li').first().isVisible()).toBe(false);
    await tools.locator('summary').click();
    await tools.getByText('echo', { exact: true }).waitFor();
    await expect.poll(() => tools.textContent()).toContain('get-sum');

    await c.locator('summary', { hasText: 'Health' }).click();
    await c.getByText(/^(not checked yet|checked .*)$/).waitFor();
    await screenshot(page, shots, 'servers');
  });

  it('deletes stored credential values', async () => {
    await card('everything').getByRole('button', { name: 'Delete your values for Everything' }).click();
    const dialog = page.getByRole('dialog', { name: 'Delete your values for Everything?' });
    await dialog.getByRole('button', { name: 'Delete' }).click();
    await dialog.waitFor({ state: 'detached' });
    await expect
      .poll(() => card('everything').getByTestId('credential-status').textContent())
      .toBe('No values stored.');
  });

  it('adds an access rule for a group with some tools, and deletes one', async () => {
    await nav('Admin: Access rules').click();
    await expect.poll(() => heading().textContent()).toBe('Admin · Access rules');
    await expect.poll(() => main().textContent()).toContain('No access rules');

    // A group rule without a group name: the API says which field is missing.
    await page.getByLabel('Server', { exact: true }).selectOption('everything');
    await page.getByRole('button', { name: 'Add rule' }).click();
    await page.getByText('is required for a group rule').first().waitFor();

    await page.getByLabel('Group name').fill('engineering');
    await page.getByLabel('Only these tools:').check();
    await page.getByRole('checkbox', { name: 'echo', exact: true }).check();
    await page.getByRole('checkbox', { name: 'get-sum', exact: true }).check();
    await page.getByRole('button', { name: 'Add rule' }).click();
    const row = page.getByRole('row').filter({ hasText: 'engineering' });
    await row.waitFor();
    await expect
      .poll(() => row.textContent())
      .toMatch(/group engineering.*Everything everything.*echo.*get-sum/);

    await page.getByLabel('Everyone').check();
    await page.getByRole('button', { name: 'Add rule' }).click();
    const everyone = page.getByRole('row').filter({ hasText: 'Everyone' });
    await everyone.waitFor();
    await expect.poll(() => everyone.textContent()).toContain('all tools');
    await screenshot(page, shots, 'access-rules');

    await everyone.getByRole('button', { name: /^Delete the rule/ }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Delete rule' }).click();
    await everyone.waitFor({ state: 'detached' });
    expect(await page.getByRole('row').filter({ hasText: 'engineering' }).count()).toBe(1);
  });

  let createdKey = '';
  it('creates an API key, shows it once with a copy button, and revokes it', async () => {
    await nav('My access').click();
    await expect.poll(() => heading().textContent()).toBe('My access');
    await expect.poll(() => main().textContent()).toContain('No connected clients');

    await page.getByLabel('Name').fill('laptop');
    await page.getByLabel('Only these:').check();
    await page.getByRole('checkbox', { name: /Everything/ }).check();
    const inAMonth = new Date(Date.now() + 30 * 86_400_000).toISOString().slice(0, 10);
    await page.getByLabel('Expires').fill(inAMonth);
    await page.getByRole('button', { name: 'Create key' }).click();

    const shown = page.getByRole('region', { name: 'Your new key “laptop”' });
    await shown.waitFor();
    await expect.poll(() => shown.textContent()).toContain('Copy it now: it is shown only this once.');
    createdKey = await shown.getByRole('textbox', { name: 'API key' }).inputValue();
    expect(createdKey).toMatch(/^mgw_/);
    await shown.getByRole('button', { name: 'Copy API key' }).click();
    await shown.getByText('Copied', { exact: true }).waitFor();
    expect(await page.evaluate('navigator.clipboard.readText()')).toBe(createdKey);
    await screenshot(page, shots, 'my-access-new-key');

    // The key works, for what it was scoped to.
    const me = await fetch(`${url}/api/me`, { headers: { authorization: `Bearer ${createdKey}` } });
    expect(me.status).toBe(200);

    await shown.getByRole('button', { name: 'I have copied it' }).click();
    await shown.waitFor({ state: 'detached' });
    expect(await page.content()).not.toContain(createdKey);
    const row = page.locator('tr[data-key="laptop"]');
    await expect.poll(() => row.textContent()).toContain(`${createdKey.slice(0, 8)}`);
    await expect.poll(() => row.textContent()).toMatch(/everything.*active/);

    await row.getByRole('button', { name: 'Revoke key laptop' }).click();
    const dialog = page.getByRole('dialog', { name: 'Revoke the key “laptop”?' });
    await expect.poll(() => dialog.textContent()).toContain('lose access immediately');
    await dialog.getByRole('button', { name: 'Revoke key' }).click();
    await expect.poll(() => row.textContent()).toContain('revoked');
    expect(await row.getByRole('button', { name: 'Revoke key laptop' }).count()).toBe(0);
    const after = await fetch(`${url}/api/me`, { headers: { authorization: `Bearer ${createdKey}` } });
    expect(after.status).toBe(401);

    await page.getByLabel('All users').check();
    await page.waitForURL(`${url}/access?all=true`);
    await page.getByRole('heading', { name: 'API keys of all users' }).waitFor();
    await page.locator('th', { hasText: 'Owner' }).first().waitFor();
    await expect.poll(() => page.locator('tr[data-key="laptop"] td.mono').textContent()).toBe('you');
  });

  it('lists audit events, filters them, pages with a cursor and opens one', async () => {
    await nav('Audit').click();
    await expect.poll(() => heading().textContent()).toBe('Audit');
    await page.locator('table.audit-table tbody tr').first().waitFor();
    const actions = () =>
      page
        .locator('table.audit-table tbody tr')
        .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-action')));
    expect(new Set(await actions()).size).toBeGreaterThan(1);

    await page.getByLabel('Action').fill('api_key.create');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await page.waitForURL(/\/audit\?action=api_key.create$/);
    await expect.poll(actions).toEqual(['api_key.create']);
    await expect
      .poll(() => page.getByRole('status').filter({ hasText: 'shown' }).textContent())
      .toBe('1 event shown, no more.');
    await screenshot(page, shots, 'audit');

    await page.getByRole('button', { name: /^Details of api_key.create/ }).click();
    const dialog = page.getByRole('dialog', { name: 'api_key.create · ok' });
    await expect.poll(() => dialog.getByTestId('event-details').textContent()).toContain('"name": "laptop"');
    await expect.poll(() => dialog.textContent()).not.toContain(createdKey);
    await screenshot(page, shots, 'audit-detail');
    await dialog.getByRole('button', { name: 'Close' }).click();
    await dialog.waitFor({ state: 'detached' });

    // A time range that excludes everything, then no filters and a small page via the API's cursor.
    await page.getByRole('button', { name: 'Clear' }).click();
    await page.getByLabel('To', { exact: true }).fill('2000-01-01T00:00');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await page.getByText('No events match these filters').waitFor();
  });

  it('pages through audit events with the cursor', async () => {
    for (let i = 0; i < 55; i += 11) {
      await Promise.all(
        Array.from({ length: 11 }, (_, j) => state.admin.post('/api/keys', { name: `bulk-${i + j}` })),
      );
    }
    const rows = page.locator('table.audit-table tbody tr');
    const status = page.getByRole('status').filter({ hasText: 'shown' });
    await expect
      .poll(async () => {
        await page.goto(`${url}/audit?action=api_key.create`);
        await status.waitFor();
        return rows.count();
      })
      .toBe(50);
    await expect.poll(() => status.textContent()).toBe('50 events shown.');
    await page.getByRole('button', { name: 'Load more' }).click();
    await expect.poll(() => status.textContent()).toBe('56 events shown, no more.');
    expect(await rows.count()).toBe(56);
    expect(await page.getByRole('button', { name: 'Load more' }).count()).toBe(0);
  });

  it('folds the navigation behind a menu on a narrow screen', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${url}/servers`);
    await card('everything').waitFor();
    const menu = page.getByRole('button', { name: 'Menu' });
    expect(await menu.getAttribute('aria-expanded')).toBe('false');
    expect(await nav('My access').isVisible()).toBe(false);
    await screenshot(page, shots, 'servers-narrow');
    await menu.click();
    expect(await nav('My access').isVisible()).toBe(true);
    await screenshot(page, shots, 'menu-narrow');
    await nav('My access').click();
    await expect.poll(() => heading().textContent()).toBe('My access');
    expect(await nav('My access').isVisible()).toBe(false);
    await screenshot(page, shots, 'my-access-narrow');
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  it('edits a server, keeping the secret transport settings unless asked to replace them', async () => {
    await nav('Admin: Servers').click();
    await card('everything').getByRole('link', { name: 'Edit Everything' }).click();
    await expect.poll(() => heading().textContent()).toBe('Edit Everything');
    expect(await page.getByLabel('Slug').count()).toBe(0);
    expect(await page.getByLabel('Command').count()).toBe(0);
    await page.getByLabel('Change the transport').check();
    expect(await page.getByLabel('Command').inputValue()).toBe(process.execPath);
    await page.getByLabel('Change the transport').uncheck();
    expect(await page.getByLabel('Variable name').inputValue()).toBe('API_TOKEN');
    await page.getByLabel('Description').fill('Edited in the browser.');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.waitForURL(`${url}/admin/servers?saved=everything`);
    await expect
      .poll(() => page.getByRole('status').filter({ hasText: 'was saved' }).textContent())
      .toContain('Server “everything” was saved.');
    await nav('Servers').click();
    await card('everything').getByText('Edited in the browser.').waitFor();
    // Still a working stdio server: the transport was not sent, so nothing was wiped.
    await expect
      .poll(() => card('everything').locator('.transport').textContent())
      .toContain('server-everything');
  });

  it('deletes a server after confirmation', async () => {
    await nav('Admin: Servers').click();
    await card('everything').getByRole('button', { name: 'Delete Everything' }).click();
    const dialog = page.getByRole('dialog', { name: 'Delete the server “Everything”?' });
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'detached' });
    expect(await card('everything').count()).toBe(1);
    await card('everything').getByRole('button', { name: 'Delete Everything' }).click();
    await dialog.getByRole('button', { name: 'Delete server' }).click();
    await card('everything').waitFor({ state: 'detached' });
    await expect.poll(() => main().textContent()).toContain('No servers registered');
  });

  it('signs out, after which the app asks to sign in again', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL((u) => u.pathname === '/auth/login');
    await expect.poll(() => page.locator('h1').textContent()).toBe('Sign in');
    await page.goto(`${url}/access`);
    await page.waitForURL((u) => u.pathname === '/auth/login');
    expect(errors).toEqual([]);
  });
});
