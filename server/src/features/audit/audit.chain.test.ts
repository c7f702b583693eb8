import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { canonicalEvent, canonicalJson, chainHash, GENESIS_HASH } from './audit.chain.ts';
import { csvField } from './audit.export.ts';
import { buildAuditRecord, recordFromLine, recordToLine, type AuditRecord } from './audit.record.ts';

const record: AuditRecord = {
  id: '0f8fad5b-d9cb-469f-a165-70867728950e',
  at: new Date('2025-01-31T12:00:00.123Z'),
  category: 'mcp',
  action: 'tools/call',
  status: 'ok',
  userId: null,
  serverSlug: 'alpha',
  toolName: 'echo',
  resourceUri: null,
  threadId: null,
  sessionId: 's-1',
  apiKeyId: null,
  oauthClientId: null,
  clientName: 'cli',
  clientVersion: '1.0',
  ip: '127.0.0.1',
  direction: 'client->upstream',
  error: null,
  latencyMs: 12,
  requestBytes: 100,
  responseBytes: 200,
  credentialScope: 'user',
  traceId: null,
  details: { b: [2, { d: 1, c: null }], a: 'x' },
};

describe('audit hash chain format', () => {
  it('serialises the documented fields in order, details with sorted keys', () => {
    const expected =
      '[7,"0f8fad5b-d9cb-469f-a165-70867728950e","2025-01-31T12:00:00.123Z","mcp","tools/call","ok",null,"alpha","echo",' +
      'null,null,"s-1",null,null,"cli","1.0","127.0.0.1","client->upstream",null,12,100,200,"user",' +
      '{"a":"x","b":[2,{"c":null,"d":1}]}]';
    expect(canonicalEvent(7, record)).toBe(expected);
    const hash = createHash('sha256').update(`${GENESIS_HASH}\n${expected}`).digest('hex');
    expect(chainHash(GENESIS_HASH, 7, record)).toBe(hash);
  });

  it('a trace id is one more element after details; without one the form is as before the column', () => {
    const traced = { ...record, traceId: '4bf92f3577b34da6a3ce929d0e0e4736' };
    expect(canonicalEvent(7, traced)).toBe(
      `${canonicalEvent(7, record).slice(0, -1)},"4bf92f3577b34da6a3ce929d0e0e4736"]`,
    );
    expect(chainHash(GENESIS_HASH, 7, traced)).not.toBe(chainHash(GENESIS_HASH, 7, record));
    expect(chainHash(GENESIS_HASH, 7, { ...traced, traceId: '0'.repeat(31) + '1' })).not.toBe(
      chainHash(GENESIS_HASH, 7, traced),
    );
  });

  it('any field, the position or the previous hash changes the hash', () => {
    const base = chainHash(GENESIS_HASH, 7, record);
    expect(chainHash(GENESIS_HASH, 8, record)).not.toBe(base);
    expect(chainHash('f'.repeat(64), 7, record)).not.toBe(base);
    expect(chainHash(GENESIS_HASH, 7, { ...record, ip: '10.0.0.1' })).not.toBe(base);
    expect(chainHash(GENESIS_HASH, 7, { ...record, details: { a: 'x' } })).not.toBe(base);
    // Key order inside details does not (jsonb does not keep it).
    expect(chainHash(GENESIS_HASH, 7, { ...record, details: { a: 'x', b: [2, { c: null, d: 1 }] } })).toBe(
      base,
    );
  });

  it('canonical JSON sorts keys at every depth and drops undefined', () => {
    expect(canonicalJson({ z: { y: 1, x: [{ b: 1, a: 2 }] }, a: undefined, m: 'é' })).toBe(
      '{"m":"é","z":{"x":[{"a":2,"b":1}],"y":1}}',
    );
  });
});

describe('audit records', () => {
  it('are normalised to what the database stores', () => {
    const r = buildAuditRecord({
      category: 'mcp',
      action: 'tools/call',
      status: 'ok',
      userId: '0F8FAD5B-D9CB-469F-A165-70867728950E',
      apiKeyId: 'not-a-uuid',
      error: 'nul\u0000here',
      toolName: 'lone \ud800',
      latencyMs: 12.6,
      requestBytes: 1e12,
      responseBytes: Number.NaN,
      details: { token: 'secret-value', n: -0, list: [undefined, 1], 'k\u0000': 'v' },
    });
    expect(r.userId).toBe('0f8fad5b-d9cb-469f-a165-70867728950e');
    expect(r.apiKeyId).toBeNull();
    expect(r.error).toBe('nul\uFFFDhere');
    expect(r.toolName).toBe('lone \uFFFD');
    expect([r.latencyMs, r.requestBytes, r.responseBytes]).toEqual([13, 2_147_483_647, null]);
    expect(r.details).toEqual({ token: '[redacted]', n: 0, list: ['undefined', 1], 'k\uFFFD': 'v' });
  });

  it('survive a spool line round trip; a torn line is rejected', () => {
    const line = recordToLine(record);
    expect(recordFromLine(line)).toEqual(record);
    expect(recordFromLine(line.slice(0, -5))).toBeUndefined();
    expect(recordFromLine(JSON.stringify({ ...JSON.parse(line), status: 'maybe' }))).toBeUndefined();
  });
});

describe('CSV fields', () => {
  it('quote, double quotes, and neutralise formulas', () => {
    expect(csvField(null)).toBe('');
    expect(csvField(42)).toBe('42');
    expect(csvField('plain')).toBe('plain');
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField('two\r\nlines')).toBe('"two\r\nlines"');
    expect(csvField('=1+1')).toBe("'=1+1");
    expect(csvField('@cmd,x')).toBe('"\'@cmd,x"');
    expect(csvField({ a: 'b,"c"' })).toBe('"{""a"":""b,\\""c\\""""}"');
  });
});
