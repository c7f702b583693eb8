import { createHash } from 'node:crypto';
import { createOpenAI } from '@ai-sdk/openai';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult, Tool as McpTool } from '@modelcontextprotocol/sdk/types.js';
import type { ToolCallView } from '@gateway/shared';
import {
  APICallError,
  RetryError,
  dynamicTool,
  jsonSchema,
  stepCountIs,
  streamText,
  type ModelMessage,
  type ToolSet,
} from 'ai';
import { inChildSpan } from '../../platform/telemetry/tracing.ts';
import { splitName } from '../gateway/index.ts';
import type { MessageRow } from './chat.repository.ts';

/** The chat model's endpoint (any OpenAI-compatible Chat Completions API). */
export interface ChatModelSettings {
  apiKey: string | undefined;
  baseUrl: string | undefined;
  name: string;
}

export const DEFAULT_SYSTEM_PROMPT = [
  'You are the assistant of an organisation’s chat workspace.',
  'You can use tools from the MCP servers this user may use; a tool’s name is `{server}__{tool}`.',
  'Use a tool when it helps to answer, say plainly when one fails or is denied, and never invent a tool’s result.',
].join(' ');

/** What one turn of the agent reports as it goes (the service persists and broadcasts). */
export interface TurnListener {
  /** Text of the step in progress. */
  onDelta(text: string): void;
  /** A tool call changed state (started, waits for approval, finished). */
  onToolCall(call: ToolCallView): void;
  /** A step ended: its text and tool calls, complete. Awaited: the next step waits for it. */
  onStep(step: { text: string; toolCalls: ToolCallView[] }): Promise<void>;
}

export interface TurnOptions {
  model: ChatModelSettings;
  system: string;
  maxSteps: number;
  history: MessageRow[];
  /** The gateway session the agent's tools go through (already connected, thread scope). */
  mcp: Client;
  /**
   * Replaces the credential values the session injected upstream. Applied to every tool
   * result before the model, the thread or its reviewers see it: the user's secrets never
   * travel to the model's provider, even when a tool echoes them.
   */
  redact: <T>(value: T) => T;
  /** Tools a person approves call by call: `{server}__{tool}` names. */
  sensitive: (name: string) => boolean;
  /** Resolves true to run a sensitive call, false to refuse it. */
  approve: (call: ToolCallView) => Promise<boolean>;
  /** The rate limits: a message saying why a call is refused, or undefined to go ahead. */
  admit: (call: ToolCallView) => Promise<string | undefined>;
  signal: AbortSignal;
  listener: TurnListener;
}

/** How a turn ended. `error` is safe to show the user (no response bodies, no secrets). */
export type TurnOutcome = { status: 'done' } | { status: 'cancelled' } | { status: 'error'; error: string };

const MODEL_TOOL_NAME = /^[a-zA-Z0-9_-]{1,64}$/;

/**
 * The name the model sees for a tool. Providers accept only `[a-zA-Z0-9_-]{1,64}` (OpenAI
 * refuses the whole request otherwise), while MCP tool names may hold dots, slashes or more
 * characters. A name that does not fit is cleaned and given a hash of the original, so two
 * tools never share a name and the same tool always gets the same one.
 */
export function modelToolName(name: string): string {
  if (MODEL_TOOL_NAME.test(name)) return name;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 8);
  return `${name.replace(/[^a-zA-Z0-9_-]/g, '_').slice(0, 55)}_${hash}`;
}

/** Rebuilds the model's view of the thread from the stored messages. */
export function toModelMessages(rows: MessageRow[]): ModelMessage[] {
  const messages: ModelMessage[] = [];
  for (const row of rows) {
    if (row.role === 'user') {
      messages.push({ role: 'user', content: row.text });
      continue;
    }
    const calls = row.toolCalls;
    if (!row.text && calls.length === 0) continue;
    messages.push({
      role: 'assistant',
      content: [
        ...(row.text ? [{ type: 'text' as const, text: row.text }] : []),
        ...calls.map((c) => ({
          type: 'tool-call' as const,
          toolCallId: c.id,
          toolName: c.name,
          input: c.input,
        })),
      ],
    });
    if (calls.length > 0) {
      messages.push({
        role: 'tool',
        content: calls.map((c) => ({
          type: 'tool-result' as const,
          toolCallId: c.id,
          toolName: modelToolName(c.name),
          output:
            c.status === 'denied'
              ? { type: 'execution-denied' as const, reason: c.output ?? 'denied' }
              : c.status === 'ok'
                ? { type: 'text' as const, value: c.output ?? '' }
                : { type: 'error-text' as const, value: c.output ?? 'the call did not finish' },
        })),
      });
    }
  }
  return messages;
}

/** MCP tool result content as text for the model and the thread. */
export function resultText(result: CallToolResult): string {
  const parts = result.content.map((c) => {
    switch (c.type) {
      case 'text':
        return c.text;
      case 'image':
        return `[image: ${c.mimeType}]`;
      case 'audio':
        return `[audio: ${c.mimeType}]`;
      case 'resource':
        return 'text' in c.resource ? c.resource.text : `[resource: ${c.resource.uri}]`;
      case 'resource_link':
        return `[resource link: ${c.uri}]`;
      default:
        return '';
    }
  });
  if (parts.length === 0 && result.structuredContent) return JSON.stringify(result.structuredContent);
  return parts.filter(Boolean).join('\n');
}

async function listAllTools(mcp: Client, signal: AbortSignal): Promise<McpTool[]> {
  const tools: McpTool[] = [];
  let cursor: string | undefined;
  do {
    const page = await mcp.listTools(cursor ? { cursor } : {}, { signal });
    tools.push(...page.tools);
    cursor = page.nextCursor;
  } while (cursor);
  return tools;
}

const partsOf = (name: string) => {
  const split = splitName(name);
  return split ? { server: split.slug, tool: split.name } : { server: '', tool: name };
};

/** A message for the user about a failed model call: the status, never the response body. */
function modelError(err: unknown): string {
  // After retries the SDK wraps the last failure.
  if (RetryError.isInstance(err)) return modelError(err.lastError);
  if (APICallError.isInstance(err)) {
    const status = err.statusCode ? `HTTP ${err.statusCode}` : 'no answer';
    return `The language model could not answer (${status}).`;
  }
  if (err instanceof Error && err.name === 'AbortError') return 'The turn took too long and was stopped.';
  return 'The language model could not answer.';
}

/**
 * One turn of the agent: the model streams, calls the gateway's tools (each call through the
 * session's router, access rules and audit), sees the results, and goes on until it answers
 * without a tool or `maxSteps` is reached. Each step is reported complete before the next.
 */
export async function runTurn(o: TurnOptions): Promise<TurnOutcome> {
  let calls = new Map<string, ToolCallView>();
  const update = (call: ToolCallView) => {
    calls.set(call.id, call);
    o.listener.onToolCall(call);
  };

  let mcpTools: McpTool[];
  try {
    mcpTools = await listAllTools(o.mcp, o.signal);
  } catch {
    if (o.signal.aborted) return { status: 'cancelled' };
    return { status: 'error', error: 'The tools could not be listed through the gateway.' };
  }
  const tools: ToolSet = {};
  /** Model-facing name → the gateway's name. */
  const names = new Map<string, string>();
  for (const t of mcpTools) {
    names.set(modelToolName(t.name), t.name);
    const { server, tool } = partsOf(t.name);
    const sensitive = o.sensitive(t.name);
    tools[modelToolName(t.name)] = dynamicTool({
      description: t.description ?? t.title ?? t.name,
      inputSchema: jsonSchema(t.inputSchema as Parameters<typeof jsonSchema>[0]),
      execute: async (input, { toolCallId, abortSignal }) => {
        const base: ToolCallView = {
          id: toolCallId,
          name: t.name,
          server,
          tool,
          input,
          status: 'running',
          output: null,
          sensitive,
        };
        if (sensitive) {
          update({ ...base, status: 'awaiting_approval' });
          if (!(await o.approve(base))) {
            const output = 'The user denied this tool call.';
            update({ ...base, status: 'denied', output });
            return output;
          }
        }
        const refused = await o.admit(base);
        if (refused) {
          update({ ...base, status: 'error', output: refused });
          return `The call was refused: ${refused}`;
        }
        update(base);
        try {
          // The call's span is the parent of the gateway's spans for it (same trace as the turn).
          const result = (await inChildSpan(
            'chat.tool_call',
            () =>
              o.mcp.callTool({ name: t.name, arguments: input as Record<string, unknown> }, undefined, {
                signal: abortSignal ?? o.signal,
                resetTimeoutOnProgress: true,
              }),
            { 'gen_ai.tool.name': t.name },
          )) as CallToolResult;
          const output = o.redact(resultText(result));
          update({ ...base, status: result.isError ? 'error' : 'ok', output });
          return result.isError ? `The tool reported an error: ${output}` : output;
        } catch (err) {
          const output = o.redact((err as Error).message || 'the call failed');
          update({ ...base, status: 'error', output });
          return `The call failed: ${output}`;
        }
      },
    });
  }

  const provider = createOpenAI({ apiKey: o.model.apiKey ?? 'unused', baseURL: o.model.baseUrl });
  let text = '';
  let failure: string | undefined;
  const result = streamText({
    model: provider.chat(o.model.name),
    system: o.system,
    messages: toModelMessages(o.history),
    tools,
    stopWhen: stepCountIs(o.maxSteps),
    abortSignal: o.signal,
    maxRetries: 1,
    // The default prints the whole error, response body included, to the console; failures
    // reach the caller as a safe message instead (the 'error' part below).
    onError: () => {},
  });
  const finishStep = async () => {
    const step = { text, toolCalls: [...calls.values()] };
    text = '';
    calls = new Map();
    if (step.text || step.toolCalls.length > 0) await o.listener.onStep(step);
  };
  try {
    // Only these parts matter here; the rest (reasoning, sources, raw chunks) are not shown.
    for await (const part of result.fullStream) {
      if (part.type === 'text-delta') {
        text += part.text;
        o.listener.onDelta(part.text);
      } else if (part.type === 'tool-error') {
        // The model called no such tool, or with input that does not fit its schema (calls
        // that ran report their own failure through execute).
        const known = calls.get(part.toolCallId);
        if (!known || known.status === 'running') {
          const name = names.get(part.toolName) ?? part.toolName;
          const { server, tool } = partsOf(name);
          update({
            id: part.toolCallId,
            name,
            server,
            tool,
            input: part.input,
            status: 'error',
            output: part.error instanceof Error ? part.error.message : String(part.error),
            sensitive: false,
          });
        }
      } else if (part.type === 'finish-step') {
        await finishStep();
      } else if (part.type === 'error') {
        failure = modelError(part.error);
      }
    }
  } catch (err) {
    if (!o.signal.aborted) failure ??= modelError(err);
  }
  // Whatever streamed before a stop or a failure is kept.
  await finishStep();
  if (o.signal.aborted) {
    return o.signal.reason instanceof Error && o.signal.reason.name === 'TimeoutError'
      ? { status: 'error', error: 'The turn took too long and was stopped.' }
      : { status: 'cancelled' };
  }
  return failure ? { status: 'error', error: failure } : { status: 'done' };
}
