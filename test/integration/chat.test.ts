import type { ChatMessageView, ThreadDetailView, ToolCallView } from '@gateway/shared';
import { afterAll, describe, expect, it } from 'vitest';
import { connectChat } from '../support/chat.ts';
import { lastToolResult, startFakeModel } from '../support/llm.ts';
import { everythingStdio, waitForAudit } from '../support/mcp.ts';
import { createUserKey, grant, useServer } from '../support/server.ts';

const MODEL_KEY = 'sk-model-key-for-the-gateway-0123456789';
const model = await startFakeModel();

/** The value of a variable in server-everything's `get-env` output. */
const envVar = (env: string, name: string) => new RegExp(`"${name}":\\s*"([^"]*)"`).exec(env)?.[1];
const tokenIn = (env: string) => envVar(env, 'USER_TOKEN');
const labelIn = (env: string) => envVar(env, 'USER_LABEL');

describe('chat: threads, the agent and its tools through the gateway', () => {
  const ctx = useServer('pglite', {
    OPENAI_BASE_URL: model.baseUrl,
    OPENAI_API_KEY: MODEL_KEY,
    CHAT_MODEL: 'scripted-model',
    CHAT_APPROVAL_TIMEOUT_MS: '20000',
    RATE_LIMIT_TOOLS: '{"everything__echo": 1}',
  });
  afterAll(() => model.close());

  const setup = async () => {
    // USER_TOKEN is a secret (redacted wherever it shows); USER_LABEL is not, so the tests can
    // see which stored credential a call used.
    const field = [
      { name: 'USER_TOKEN', kind: 'env', secret: true, required: true },
      { name: 'USER_LABEL', kind: 'env', secret: false, required: false },
    ];
    const created = await ctx.admin.post(
      '/api/servers',
      everythingStdio('everything', { credentialFields: field, sensitiveTools: ['get-sum'] }),
    );
    expect(created.status).toBe(201);
    await grant(ctx.admin, 'everything');
  };

  it('says whether a model is configured', async () => {
    await setup();
    const alice = await createUserKey(ctx.server, 'alice');
    expect((await alice.client.get('/api/chat/status')).body).toEqual({
      enabled: true,
      model: 'scripted-model',
    });
  });

  it('runs a turn: the agent calls a tool with the thread’s credential, streams, stores every step', async () => {
    const since = new Date();
    const alice = await createUserKey(ctx.server, 'alice-turn');
    await alice.client.put('/api/servers/everything/credentials', {
      values: { USER_TOKEN: 'alice-user-wide-secret', USER_LABEL: 'alice-user' },
    });
    const thread = (await alice.client.post('/api/threads', {})).body as { id: string; title: string };
    expect(thread.title).toBe('New thread');
    const threadSecret = 'alice-thread-one-secret';
    await alice.client.put('/api/servers/everything/credentials', {
      values: { USER_TOKEN: threadSecret, USER_LABEL: 'alice-thread-one' },
      threadId: thread.id,
    });

    model.script({ toolCalls: [{ name: 'everything__get-env', arguments: {} }] }, (req) => ({
      text: `This thread's label is ${labelIn(lastToolResult(req))}, its token ${tokenIn(lastToolResult(req))}.`,
    }));
    const chat = await connectChat(ctx.server.url, alice.key);
    try {
      expect(await chat.socket.emitWithAck('thread:join', { threadId: thread.id })).toEqual({ ok: true });
      const ack = await chat.socket.emitWithAck('message:send', {
        threadId: thread.id,
        text: 'Which token do I use?',
      });
      expect(ack).toMatchObject({ ok: true, message: { role: 'user', text: 'Which token do I use?' } });

      await chat.next((e) => e.name === 'run:state' && e.body.running === false, 'the end of the turn');
      const names = chat.events.map((e) => e.name);
      expect(names[0]).toBe('message:new');
      expect(names).toContain('message:delta');
      const toolUpdates = chat.events
        .filter((e) => e.name === 'tool:update')
        .map((e) => e.body.call as ToolCallView);
      expect(toolUpdates.map((c) => c.status)).toEqual(['running', 'ok']);
      expect(toolUpdates[1]).toMatchObject({
        server: 'everything',
        tool: 'get-env',
        name: 'everything__get-env',
      });
      const streamed = chat.events
        .filter((e) => e.name === 'message:delta')
        .map((e) => e.body.text as string)
        .join('');
      // The thread's credential was used, and its secret never reached the model.
      expect(streamed).toBe("This thread's label is alice-thread-one, its token [redacted].");
      // The thread took its title from the first message.
      expect(
        chat.events.some(
          (e) => e.name === 'thread:update' && e.body.thread?.title === 'Which token do I use?',
        ),
      ).toBe(true);
    } finally {
      chat.socket.close();
    }

    // Every step is stored: the user's message, the tool step (with its result), the answer.
    const detail = (await alice.client.get(`/api/threads/${thread.id}`)).body as ThreadDetailView;
    expect(detail.messages.map((m: ChatMessageView) => [m.role, m.text, m.toolCalls.length])).toEqual([
      ['user', 'Which token do I use?', 0],
      ['assistant', '', 1],
      ['assistant', "This thread's label is alice-thread-one, its token [redacted].", 0],
    ]);
    expect(JSON.stringify(detail)).not.toContain(threadSecret);
    expect(detail.messages[1]!.toolCalls[0]).toMatchObject({ status: 'ok', sensitive: false });

    // The model got the gateway's tools, the gateway's own key (never a user's), and the result.
    const [first, second] = model.requests.slice(-2);
    expect(first!.authorization).toBe(`Bearer ${MODEL_KEY}`);
    expect(first!.tools?.map((t) => t.function.name)).toContain('everything__get-env');
    expect(first!.messages.at(-1)).toMatchObject({ role: 'user', content: 'Which token do I use?' });
    expect(labelIn(lastToolResult(second!))).toBe('alice-thread-one');
    expect(tokenIn(lastToolResult(second!))).toBe('[redacted]');
    expect(JSON.stringify(model.requests)).not.toContain(threadSecret);

    // The tool call went through the gateway's audit, as the thread's.
    const call = await waitForAudit(
      ctx.admin,
      since,
      (e) => e.toolName === 'get-env' && e.action === 'tools/call',
      'the agent’s tools/call',
      { threadId: thread.id },
    );
    expect(call).toMatchObject({ userId: alice.user.id, serverSlug: 'everything', status: 'ok' });
    expect((call as unknown as { credentialScope: string }).credentialScope).toBe('thread');
    const turn = await waitForAudit(ctx.admin, since, (e) => e.action === 'chat.turn', 'the turn', {
      threadId: thread.id,
    });
    expect(turn.details).toMatchObject({ outcome: 'done', steps: 2, toolCalls: 1 });
    const trail = JSON.stringify((await ctx.admin.get(`/api/audit?threadId=${thread.id}&limit=500`)).body);
    expect(trail).not.toContain(threadSecret);
    expect(trail).not.toContain(MODEL_KEY);
  });

  it('never uses thread T1’s credential in thread T2', async () => {
    const alice = await createUserKey(ctx.server, 'alice-t2');
    await alice.client.put('/api/servers/everything/credentials', {
      values: { USER_TOKEN: 'alice-own-secret', USER_LABEL: 'alice-own' },
    });
    const t1 = (await alice.client.post('/api/threads', { title: 'T1' })).body.id as string;
    const t2 = (await alice.client.post('/api/threads', { title: 'T2' })).body.id as string;
    await alice.client.put('/api/servers/everything/credentials', {
      values: { USER_TOKEN: 't1-only-secret', USER_LABEL: 'only-for-t1' },
      threadId: t1,
    });
    const seen: Record<string, string | undefined> = {};
    const chat = await connectChat(ctx.server.url, alice.key);
    try {
      for (const [name, id] of [
        ['t1', t1],
        ['t2', t2],
      ] as const) {
        model.script({ toolCalls: [{ name: 'everything__get-env', arguments: {} }] }, (req) => {
          seen[name] = labelIn(lastToolResult(req));
          return { text: 'done' };
        });
        await chat.socket.emitWithAck('thread:join', { threadId: id });
        chat.events.length = 0;
        expect((await chat.socket.emitWithAck('message:send', { threadId: id, text: 'env?' })).ok).toBe(true);
        await chat.next(
          (e) => e.name === 'run:state' && e.body.running === false && e.body.threadId === id,
          'turn end',
        );
      }
    } finally {
      chat.socket.close();
    }
    expect(seen).toEqual({ t1: 'only-for-t1', t2: 'alice-own' });
  });

  it('waits for the user to approve a sensitive tool, and tells the model when it is denied', async () => {
    const bob = await createUserKey(ctx.server, 'bob-approve');
    await bob.client.put('/api/servers/everything/credentials', { values: { USER_TOKEN: 'bob' } });
    const thread = (await bob.client.post('/api/threads', {})).body.id as string;
    const chat = await connectChat(ctx.server.url, bob.key);
    const mallory = await createUserKey(ctx.server, 'mallory-approve');
    const other = await connectChat(ctx.server.url, mallory.key);
    try {
      await chat.socket.emitWithAck('thread:join', { threadId: thread });
      // Approved: the call runs.
      model.script({ toolCalls: [{ name: 'everything__get-sum', arguments: { a: 2, b: 3 } }] }, (req) => ({
        text: `The sum: ${lastToolResult(req)}`,
      }));
      await chat.socket.emitWithAck('message:send', { threadId: thread, text: 'add 2 and 3' });
      const waiting = await chat.next(
        (e) => e.name === 'tool:update' && e.body.call.status === 'awaiting_approval',
        'the approval request',
      );
      const callId = waiting.body.call.id as string;
      expect(waiting.body.call).toMatchObject({ sensitive: true, tool: 'get-sum', input: { a: 2, b: 3 } });
      // Someone else can neither follow nor approve it.
      expect(await other.socket.emitWithAck('thread:join', { threadId: thread })).toMatchObject({
        ok: false,
        error: { code: 'not_found' },
      });
      expect(
        await other.socket.emitWithAck('tool:approve', { threadId: thread, callId, approve: true }),
      ).toMatchObject({
        ok: false,
        error: { code: 'not_found' },
      });
      expect(
        await chat.socket.emitWithAck('tool:approve', { threadId: thread, callId, approve: true }),
      ).toEqual({
        ok: true,
      });
      const done = await chat.next(
        (e) => e.name === 'tool:update' && e.body.call.id === callId && e.body.call.status === 'ok',
        'the approved call’s result',
      );
      expect(done.body.call.output).toContain('5');
      await chat.next((e) => e.name === 'run:state' && e.body.running === false, 'turn end');

      // Denied: the call never runs, and the model hears so.
      chat.events.length = 0;
      let told = '';
      model.script({ toolCalls: [{ name: 'everything__get-sum', arguments: { a: 1, b: 1 } }] }, (req) => {
        told = lastToolResult(req);
        return { text: 'Understood.' };
      });
      await chat.socket.emitWithAck('message:send', { threadId: thread, text: 'add 1 and 1' });
      const ask = await chat.next(
        (e) => e.name === 'tool:update' && e.body.call.status === 'awaiting_approval',
        'ask',
      );
      await chat.socket.emitWithAck('tool:approve', {
        threadId: thread,
        callId: ask.body.call.id,
        approve: false,
      });
      await chat.next((e) => e.name === 'run:state' && e.body.running === false, 'turn end');
      expect(
        chat.events.find((e) => e.name === 'tool:update' && e.body.call.status === 'denied'),
      ).toBeDefined();
      expect(told).toContain('denied');
    } finally {
      chat.socket.close();
      other.socket.close();
    }
  });

  it('refuses bad input and a second message during a turn, and keeps what a failed or stopped turn said', async () => {
    const carol = await createUserKey(ctx.server, 'carol-errors');
    const thread = (await carol.client.post('/api/threads', {})).body.id as string;
    const chat = await connectChat(ctx.server.url, carol.key);
    try {
      expect(await chat.socket.emitWithAck('message:send', { threadId: thread, text: '   ' })).toMatchObject({
        ok: false,
        error: { code: 'validation_failed', message: expect.stringContaining('body.text') },
      });
      expect(
        await chat.socket.emitWithAck('message:send', { threadId: 'not-a-uuid', text: 'hi' } as never),
      ).toMatchObject({
        ok: false,
        error: { code: 'validation_failed', message: expect.stringContaining('body.threadId') },
      });

      // The model fails: the turn ends with an error message the user can read; nothing leaks.
      // (The agent retries a failed model call once.)
      const exploded = { status: 500, body: `{"error":{"message":"upstream exploded with ${MODEL_KEY}"}}` };
      model.script(exploded, exploded);
      await chat.socket.emitWithAck('thread:join', { threadId: thread });
      expect((await chat.socket.emitWithAck('message:send', { threadId: thread, text: 'hello' })).ok).toBe(
        true,
      );
      const failed = await chat.next(
        (e) => e.name === 'message:new' && e.body.message.error,
        'the error message',
      );
      expect(failed.body.message.error).toBe('The language model could not answer (HTTP 500).');
      await chat.next((e) => e.name === 'run:state' && e.body.running === false, 'turn end');

      // A turn that hangs: a second message is refused, and Stop ends it keeping the partial text.
      chat.events.length = 0;
      model.script({ hang: true, text: 'Thinking about' });
      expect((await chat.socket.emitWithAck('message:send', { threadId: thread, text: 'slow one' })).ok).toBe(
        true,
      );
      await chat.next((e) => e.name === 'message:delta', 'the first delta');
      expect(
        await chat.socket.emitWithAck('message:send', { threadId: thread, text: 'another' }),
      ).toMatchObject({
        ok: false,
        error: { code: 'conflict' },
      });
      expect(await chat.socket.emitWithAck('run:cancel', { threadId: thread })).toEqual({ ok: true });
      await chat.next((e) => e.name === 'run:state' && e.body.running === false, 'the stopped turn');
    } finally {
      chat.socket.close();
    }
    const messages = ((await carol.client.get(`/api/threads/${thread}`)).body as ThreadDetailView).messages;
    expect(messages.map((m) => [m.role, m.text, m.error])).toEqual([
      ['user', 'hello', null],
      ['assistant', '', 'The language model could not answer (HTTP 500).'],
      ['user', 'slow one', null],
      ['assistant', 'Thinking about', null],
      ['assistant', '', 'Stopped.'],
    ]);
  });

  it('holds the agent’s tool calls to the same rate limits as MCP clients', async () => {
    const gina = await createUserKey(ctx.server, 'gina-limits');
    await gina.client.put('/api/servers/everything/credentials', { values: { USER_TOKEN: 'g' } });
    const thread = (await gina.client.post('/api/threads', {})).body.id as string;
    model.script(
      {
        toolCalls: [
          { name: 'everything__echo', arguments: { message: 'one' } },
          { name: 'everything__echo', arguments: { message: 'two' } },
        ],
      },
      { text: 'done' },
    );
    const chat = await connectChat(ctx.server.url, gina.key);
    try {
      await chat.socket.emitWithAck('thread:join', { threadId: thread });
      await chat.socket.emitWithAck('message:send', { threadId: thread, text: 'echo twice' });
      await chat.next((e) => e.name === 'run:state' && e.body.running === false, 'turn end');
    } finally {
      chat.socket.close();
    }
    const step = ((await gina.client.get(`/api/threads/${thread}`)).body as ThreadDetailView).messages[1]!;
    const statuses = step.toolCalls.map((c) => [c.status, c.output]).sort();
    expect(statuses[0]).toEqual(['error', expect.stringContaining('at most 1 calls per minute')]);
    expect(statuses[1]![0]).toBe('ok');
  });

  it('authorizes sockets and threads: no key, a foreign Origin, someone else’s thread', async () => {
    await expect(connectChat(ctx.server.url, undefined)).rejects.toThrow(/unauthenticated/);
    await expect(
      connectChat(ctx.server.url, 'not-a-real-key-0123456789abcdefghijklmnopqrstuvwxyz'),
    ).rejects.toThrow(/unauthenticated/);
    const dave = await createUserKey(ctx.server, 'dave-authz');
    await expect(connectChat(ctx.server.url, dave.key, { origin: 'https://evil.example' })).rejects.toThrow();
    // Same-origin whichever loopback name the user typed: a page at localhost reaches the
    // socket at localhost, though the gateway's own URL names 127.0.0.1.
    const port = new URL(ctx.server.url).port;
    const local = await connectChat(`http://localhost:${port}`, dave.key, {
      origin: `http://localhost:${port}`,
    });
    local.socket.close();
    // But only its own Host: an Origin naming another host than the one reached is refused.
    await expect(
      connectChat(ctx.server.url, dave.key, { origin: `http://localhost:${port}` }),
    ).rejects.toThrow();
    const erin = await createUserKey(ctx.server, 'erin-authz');
    const thread = (await erin.client.post('/api/threads', { title: 'Erin’s' })).body.id as string;
    const chat = await connectChat(ctx.server.url, dave.key);
    try {
      for (const [event, body] of [
        ['thread:join', { threadId: thread }],
        ['message:send', { threadId: thread, text: 'hi' }],
      ] as const) {
        expect(await chat.socket.emitWithAck(event, body as never)).toMatchObject({
          ok: false,
          error: { code: 'not_found' },
        });
      }
    } finally {
      chat.socket.close();
    }
    // REST: someone else's thread does not exist for dave; admins and auditors may review it.
    expect((await dave.client.get(`/api/threads/${thread}`)).status).toBe(404);
    expect((await dave.client.patch(`/api/threads/${thread}`, { title: 'mine' })).status).toBe(404);
    expect((await dave.client.get('/api/admin/threads')).status).toBe(403);
    const all = (await ctx.admin.get(`/api/admin/threads?userId=${erin.user.id}`)).body.threads as {
      id: string;
      userName: string;
    }[];
    expect(all).toEqual([expect.objectContaining({ id: thread, userName: 'erin-authz' })]);
    expect((await ctx.admin.get(`/api/threads/${thread}`)).status).toBe(200);
    // Bad REST input names the field and changes nothing.
    const bad = await erin.client.patch(`/api/threads/${thread}`, { title: '' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toContain('body.title');
    expect((await erin.client.get(`/api/threads/${thread}`)).body.title).toBe('Erin’s');
  });
});

describe('chat without a model', () => {
  const ctx = useServer('pglite');
  it('reports chat as off and refuses messages with a clear error', async () => {
    const user = await createUserKey(ctx.server, 'frank');
    expect((await user.client.get('/api/chat/status')).body).toEqual({ enabled: false, model: null });
    const thread = (await user.client.post('/api/threads', {})).body.id as string;
    const chat = await connectChat(ctx.server.url, user.key);
    try {
      expect(await chat.socket.emitWithAck('message:send', { threadId: thread, text: 'hi' })).toMatchObject({
        ok: false,
        error: { code: 'not_ready', message: expect.stringContaining('OPENAI_API_KEY') },
      });
    } finally {
      chat.socket.close();
    }
    expect(((await user.client.get(`/api/threads/${thread}`)).body as ThreadDetailView).messages).toEqual([]);
  });
});
