import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A stand-in for the hosted language model: an OpenAI-compatible Chat Completions endpoint
 * (`POST /v1/chat/completions`, streamed as server-sent events) that answers from a script.
 * It is the only stand-in the tests use; everything else (gateway, MCP servers, database)
 * is real.
 */

export interface ScriptedToolCall {
  name: string;
  arguments: Record<string, unknown>;
}

/** One model answer: text (streamed in a few chunks), tool calls, or an HTTP error. */
export type ScriptedReply =
  | { text: string }
  | { toolCalls: ScriptedToolCall[]; text?: string }
  | { status: number; body?: string }
  /** Streams `text` and then holds the response open until the client goes away. */
  | { hang: true; text?: string };

/** What the model was sent, for assertions. */
export interface ChatRequest {
  model: string;
  messages: Array<{ role: string; content?: unknown; tool_calls?: unknown; tool_call_id?: string }>;
  tools?: Array<{ type: string; function: { name: string; description?: string; parameters?: unknown } }>;
  authorization: string | undefined;
}

export interface FakeModel {
  /** The base URL to give the gateway as OPENAI_BASE_URL (`http://127.0.0.1:port/v1`). */
  readonly baseUrl: string;
  /** Requests received, in order. */
  readonly requests: ChatRequest[];
  /** Appends answers; a function sees the request it answers. */
  script(...replies: Array<ScriptedReply | ((req: ChatRequest) => ScriptedReply)>): void;
  close(): Promise<void>;
}

const body = (req: IncomingMessage) =>
  new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });

export async function startFakeModel(): Promise<FakeModel> {
  const queue: Array<ScriptedReply | ((req: ChatRequest) => ScriptedReply)> = [];
  const requests: ChatRequest[] = [];
  let n = 0;
  const server: Server = createServer((req, res) => {
    void (async () => {
      if (req.method !== 'POST' || !req.url?.endsWith('/chat/completions')) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: `no route ${req.method} ${req.url}` } }));
        return;
      }
      const parsed = JSON.parse(await body(req)) as Omit<ChatRequest, 'authorization'> & { stream?: boolean };
      const request: ChatRequest = { ...parsed, authorization: req.headers.authorization };
      requests.push(request);
      const next = queue.shift();
      const reply: ScriptedReply = !next
        ? { status: 500, body: '{"error":{"message":"the test scripted no more replies"}}' }
        : typeof next === 'function'
          ? next(request)
          : next;
      if ('status' in reply) {
        res.writeHead(reply.status, { 'content-type': 'application/json' });
        res.end(reply.body ?? JSON.stringify({ error: { message: `scripted HTTP ${reply.status}` } }));
        return;
      }
      const id = `chatcmpl-${++n}`;
      const created = Math.floor(Date.now() / 1000);
      const chunk = (fields: Record<string, unknown>) =>
        res.write(
          `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model: parsed.model, ...fields })}\n\n`,
        );
      const send = (delta: Record<string, unknown>, finish: string | null = null) =>
        chunk({ choices: [{ index: 0, delta, finish_reason: finish }] });
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      send({ role: 'assistant', content: '' });
      const text = 'text' in reply ? (reply.text ?? '') : '';
      // A few chunks, so the gateway streams deltas.
      for (const piece of text.match(/.{1,8}/gs) ?? []) send({ content: piece });
      if ('hang' in reply) {
        await new Promise((resolve) => res.on('close', resolve));
        return;
      }
      if ('toolCalls' in reply) {
        reply.toolCalls.forEach((call, index) =>
          send({
            tool_calls: [
              {
                index,
                id: `call_${n}_${index}`,
                type: 'function',
                function: { name: call.name, arguments: JSON.stringify(call.arguments) },
              },
            ],
          }),
        );
        send({}, 'tool_calls');
      } else {
        send({}, 'stop');
      }
      chunk({ choices: [], usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 } });
      res.end('data: [DONE]\n\n');
    })().catch((err: unknown) => {
      res.destroy(err instanceof Error ? err : new Error(String(err)));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    requests,
    script: (...replies) => queue.push(...replies),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The text of the last `tool` message the model was sent (a tool's result as the agent passed it on). */
export function lastToolResult(req: ChatRequest): string {
  const tool = [...req.messages].reverse().find((m) => m.role === 'tool');
  return typeof tool?.content === 'string' ? tool.content : JSON.stringify(tool?.content ?? '');
}
