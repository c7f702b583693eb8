import type { ToolCallView } from '@gateway/shared';
import { describe, expect, it } from 'vitest';
import { modelToolName, resultText, toModelMessages } from './chat.agent.ts';
import type { MessageRow } from './chat.repository.ts';

const row = (r: Partial<MessageRow> & Pick<MessageRow, 'role'>): MessageRow => ({
  id: 'm',
  seq: 1,
  threadId: 't',
  text: '',
  toolCalls: [],
  error: null,
  createdAt: new Date(0),
  ...r,
});

const call = (id: string, status: ToolCallView['status'], output: string | null): ToolCallView => ({
  id,
  name: 'docs__search',
  server: 'docs',
  tool: 'search',
  input: { q: 'x' },
  status,
  output,
  sensitive: false,
});

describe('toModelMessages', () => {
  it('replays user text, assistant steps with their tool calls, and each call’s result', () => {
    const messages = toModelMessages([
      row({ role: 'user', text: 'find x' }),
      row({
        role: 'assistant',
        text: 'Looking.',
        toolCalls: [call('c1', 'ok', 'found x'), call('c2', 'error', 'boom'), call('c3', 'denied', 'no')],
      }),
      row({ role: 'assistant', text: 'Here is x.' }),
    ]);
    expect(messages).toEqual([
      { role: 'user', content: 'find x' },
      {
        role: 'assistant',
        content: [
          { type: 'text', text: 'Looking.' },
          { type: 'tool-call', toolCallId: 'c1', toolName: 'docs__search', input: { q: 'x' } },
          { type: 'tool-call', toolCallId: 'c2', toolName: 'docs__search', input: { q: 'x' } },
          { type: 'tool-call', toolCallId: 'c3', toolName: 'docs__search', input: { q: 'x' } },
        ],
      },
      {
        role: 'tool',
        content: [
          {
            type: 'tool-result',
            toolCallId: 'c1',
            toolName: 'docs__search',
            output: { type: 'text', value: 'found x' },
          },
          {
            type: 'tool-result',
            toolCallId: 'c2',
            toolName: 'docs__search',
            output: { type: 'error-text', value: 'boom' },
          },
          {
            type: 'tool-result',
            toolCallId: 'c3',
            toolName: 'docs__search',
            output: { type: 'execution-denied', reason: 'no' },
          },
        ],
      },
      { role: 'assistant', content: [{ type: 'text', text: 'Here is x.' }] },
    ]);
  });

  it('leaves out error lines (a failed or stopped turn) that said nothing', () => {
    expect(
      toModelMessages([row({ role: 'user', text: 'hi' }), row({ role: 'assistant', error: 'Stopped.' })]),
    ).toEqual([{ role: 'user', content: 'hi' }]);
  });

  it('gives a call that never finished an error result, so the model is not left waiting', () => {
    const [, , tool] = toModelMessages([
      row({ role: 'user', text: 'go' }),
      row({ role: 'assistant', toolCalls: [call('c1', 'running', null)] }),
    ]);
    expect(tool).toMatchObject({
      role: 'tool',
      content: [{ output: { type: 'error-text', value: 'the call did not finish' } }],
    });
  });
});

describe('resultText', () => {
  it('turns MCP content into text the model and the thread can show', () => {
    expect(
      resultText({
        content: [
          { type: 'text', text: 'line one' },
          { type: 'image', data: 'AAAA', mimeType: 'image/png' },
          { type: 'resource', resource: { uri: 'file:///a.txt', text: 'embedded text' } },
          { type: 'resource', resource: { uri: 'file:///b.bin', blob: 'AAAA' } },
          { type: 'resource_link', uri: 'file:///c', name: 'c' },
        ],
      }),
    ).toBe(
      'line one\n[image: image/png]\nembedded text\n[resource: file:///b.bin]\n[resource link: file:///c]',
    );
    expect(resultText({ content: [], structuredContent: { n: 1 } })).toBe('{"n":1}');
  });
});

describe('modelToolName', () => {
  it('keeps names providers accept, and gives others a stable, distinct, valid name', () => {
    expect(modelToolName('docs__search')).toBe('docs__search');
    const dotted = modelToolName('files__read.file');
    const underscored = modelToolName('files__read_file');
    expect(dotted).toMatch(/^files__read_file_[0-9a-f]{8}$/);
    expect(underscored).toBe('files__read_file');
    expect(modelToolName('files__read.file')).toBe(dotted);
    const long = modelToolName(`${'a'.repeat(40)}__${'b'.repeat(40)}`);
    expect(long).toMatch(/^[a-zA-Z0-9_-]{1,64}$/);
    expect(long).not.toBe(modelToolName(`${'a'.repeat(40)}__${'b'.repeat(41)}`));
  });
});
