import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, screenshot, signInLocally } from '../support/browser.ts';
import { tempDir } from '../support/config.ts';
import { lastToolResult, startFakeModel } from '../support/llm.ts';
import { everythingStdio } from '../support/mcp.ts';
import { ADMIN_TOKEN, grant, useServer } from '../support/server.ts';
import { hasChromium } from '../support/services.ts';

const model = await startFakeModel();

// A person chatting in Chromium: a thread, a streamed answer, a sensitive tool approved in
// the page, then the admin's review of the thread's tool calls.
describe.skipIf(!(await hasChromium()))('chat in the web UI (Chromium)', () => {
  const ctx = useServer('pglite', { OPENAI_BASE_URL: model.baseUrl, CHAT_MODEL: 'scripted-model' });
  const shots = tempDir('gw-chat-shots-');
  let browser: Browser;
  let page: Page;
  const errors: string[] = [];

  beforeAll(async () => {
    const created = await ctx.admin.post(
      '/api/servers',
      everythingStdio('everything', { sensitiveTools: ['get-sum'] }),
    );
    expect(created.status).toBe(201);
    await grant(ctx.admin, 'everything');
    browser = await launchBrowser();
    page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    page.on('pageerror', (e) => errors.push(e.message));
    console.info(`chat screenshots: ${shots}`);
  });
  afterAll(async () => {
    await browser?.close();
    await model.close();
  });

  const heading = () => page.locator('main h1');
  const log = () => page.getByRole('log', { name: 'Messages' });
  const stored = () => log().locator('article:not([data-streaming])');

  it('starts a thread, approves a sensitive tool in the page, and shows the streamed answer', async () => {
    await signInLocally(page, ctx.server.url, ADMIN_TOKEN, '/chat');
    await expect.poll(() => heading().textContent()).toBe('Chat');
    await page.getByRole('button', { name: 'New thread' }).click();
    await page.waitForURL(/\/chat\/[0-9a-f-]{36}$/);
    await expect.poll(() => heading().textContent()).toBe('New thread');

    model.script({ toolCalls: [{ name: 'everything__get-sum', arguments: { a: 2, b: 3 } }] }, (req) => ({
      text: `The sum is ${/(\d+)\D*$/.exec(lastToolResult(req))?.[1]}.`,
    }));
    const message = page.getByLabel('Message', { exact: true });
    await message.fill('What is 2 + 3?');
    await message.press('Enter');

    const card = log().locator('[data-tool-call]');
    await card.and(page.locator('[data-status="awaiting_approval"]')).waitFor();
    await expect.poll(() => page.getByRole('status').filter({ hasText: 'answering' }).count()).toBe(1);
    await screenshot(page, shots, 'approval');
    await card.getByRole('button', { name: 'Approve' }).click();

    await expect.poll(() => stored().last().locator('.message-text').textContent()).toBe('The sum is 5.');
    await expect.poll(() => card.getAttribute('data-status')).toBe('ok');
    // The thread took its title from the first message, in the list and the heading.
    await expect.poll(() => heading().textContent()).toBe('What is 2 + 3?');
    await expect
      .poll(() => page.getByRole('navigation', { name: 'Threads' }).getByRole('link').first().textContent())
      .toContain('What is 2 + 3?');
    await screenshot(page, shots, 'answered');

    // Everything was stored: a reload shows the same conversation.
    await page.reload();
    await expect.poll(() => stored().count()).toBe(3);
    expect(await stored().evaluateAll((els) => els.map((e) => e.getAttribute('data-role')))).toEqual([
      'user',
      'assistant',
      'assistant',
    ]);
    expect(await message.inputValue()).toBe('');
  });

  it('shows a failed turn as an error in the thread, and takes the next message', async () => {
    // The model fails twice (the agent retries once): the error shows in the thread.
    model.script({ status: 503 }, { status: 503 });
    const message = page.getByLabel('Message', { exact: true });
    const send = page.getByRole('button', { name: 'Send' });
    await message.fill('Are you there?');
    await send.click();
    await expect
      .poll(() => stored().last().textContent())
      .toContain('The language model could not answer (HTTP 503).');
    // The turn is over: the composer takes a message again.
    await message.fill('Still there?');
    await expect.poll(() => send.isDisabled()).toBe(false);
    await message.fill('');
  });

  it('lets the admin review the thread and its tool calls in the audit trail', async () => {
    const title = 'What is 2 + 3?';
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Threads' }).click();
    await expect.poll(() => heading().textContent()).toBe('Admin · Threads');
    await page.getByRole('link', { name: `Tool calls of ${title}` }).click();
    await page.waitForURL(/\/audit\?threadId=/);
    const rows = page.locator('table.audit-table tbody tr');
    await expect.poll(async () => (await rows.allTextContents()).join('\n')).toContain('get-sum');
    await screenshot(page, shots, 'audit-thread');
  });

  it('stores credentials for the thread in the page, and the agent uses them there', async () => {
    const created = await ctx.admin.post(
      '/api/servers',
      everythingStdio('creds', {
        credentialFields: [
          { name: 'USER_TOKEN', kind: 'env', secret: true, required: true, label: 'User token' },
          { name: 'USER_LABEL', kind: 'env', secret: false, required: false, label: 'Label' },
        ],
      }),
    );
    expect(created.status).toBe(201);
    await grant(ctx.admin, 'creds');
    const secret = 'thread-only-token-4711';

    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Chat' }).click();
    await page.getByRole('navigation', { name: 'Threads' }).getByRole('link').first().click();
    await page.waitForURL(/\/chat\/[0-9a-f-]{36}$/);
    const threadId = new URL(page.url()).pathname.split('/').pop();
    await expect.poll(() => heading().textContent()).toBe('What is 2 + 3?');

    const toggle = page.getByRole('button', { name: 'Thread credentials', exact: true });
    await toggle.click();
    await expect.poll(() => toggle.getAttribute('aria-expanded')).toBe('true');
    const creds = page.locator('[data-thread-credentials="creds"]');
    const status = creds.getByTestId('thread-credential-status');
    await expect.poll(() => status.textContent()).toBe('No values stored for this thread.');
    // Only servers that ask for credentials are listed.
    expect(await page.locator('[data-thread-credentials="everything"]').count()).toBe(0);
    const field = creds.getByLabel('User token');
    expect(await field.getAttribute('type')).toBe('password');

    // Nothing typed: the API's error shows at the field.
    await creds.getByRole('button', { name: 'Save values' }).click();
    await expect.poll(() => field.getAttribute('aria-invalid')).toBe('true');
    await expect.poll(() => creds.getByRole('alert').textContent()).toContain('body.values.USER_TOKEN');

    await field.fill(secret);
    await creds.getByLabel('Label (optional)').fill('thread-label');
    await creds.getByRole('button', { name: 'Save values' }).click();
    await expect
      .poll(() => creds.getByRole('status').textContent())
      .toBe('Saved. The agent uses these values for everything (stdio) creds in this thread.');
    await expect
      .poll(() => status.textContent())
      .toMatch(/^Stored for this thread: USER_LABEL, USER_TOKEN\./);
    expect(await field.inputValue()).toBe('');
    expect(await field.getAttribute('aria-invalid')).toBeNull();
    expect(await field.getAttribute('placeholder')).toBe('stored — type to replace');
    const inputValues = () =>
      page
        .locator('input, textarea')
        .evaluateAll((els) => els.map((e) => ('value' in e ? String(e.value) : '')));
    expect((await inputValues()).filter((v) => v.includes(secret))).toEqual([]);
    expect(await page.content()).not.toContain(secret);
    await screenshot(page, shots, 'thread-credentials');

    // The API lists the thread's credential (field names, never the value).
    const listed = await ctx.admin.get('/api/credentials');
    expect(listed.status).toBe(200);
    expect(listed.body.credentials).toContainEqual(
      expect.objectContaining({ serverSlug: 'creds', threadId, kind: 'values' }),
    );
    expect(JSON.stringify(listed.body)).not.toContain(secret);

    // The agent's tool call in this thread runs with the thread's values; the secret one is
    // redacted before the model (or the page) sees what the tool printed.
    const envVar = (env: string, name: string) =>
      new RegExp(`"${name}":\\s*"([^"]*)"`).exec(env)?.[1] ?? 'missing';
    model.script({ toolCalls: [{ name: 'creds__get-env', arguments: {} }] }, (req) => ({
      text: `Label ${envVar(lastToolResult(req), 'USER_LABEL')}, token ${envVar(lastToolResult(req), 'USER_TOKEN')}.`,
    }));
    const message = page.getByLabel('Message', { exact: true });
    await message.fill('Which token do you see?');
    await message.press('Enter');
    await expect
      .poll(() => stored().last().locator('.message-text').textContent())
      .toBe('Label thread-label, token [redacted].');
    await expect.poll(() => log().locator('[data-tool-call]').last().getAttribute('data-status')).toBe('ok');
    expect((await inputValues()).filter((v) => v.includes(secret))).toEqual([]);
    expect(await page.content()).not.toContain(secret);
  });

  it('renames and deletes a thread', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Chat' }).click();
    await page.getByRole('navigation', { name: 'Threads' }).getByRole('link').first().click();
    await page.getByRole('button', { name: 'Rename' }).click();
    await page.getByLabel('Thread title').fill('Sums');
    await page.getByRole('button', { name: 'Save' }).click();
    await expect.poll(() => heading().textContent()).toBe('Sums');
    await page.getByRole('button', { name: 'Delete thread' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Delete thread' }).click();
    await page.waitForURL((u) => u.pathname === '/chat');
    await expect
      .poll(() => page.getByRole('navigation', { name: 'Threads' }).textContent())
      .toContain('No threads yet.');
    expect(errors).toEqual([]);
  });
});
