/**
 * How deeply arrays and objects may nest in a request body. JSON.parse copes with any depth,
 * but the recursive code that walks a parsed message afterwards (zod schemas in the MCP SDK,
 * redaction, JSON.stringify) overflows the stack somewhere in the thousands, and a
 * RangeError there is an internal failure a client could trigger at will. No MCP message or
 * REST body of ours comes near this.
 */
export const MAX_JSON_DEPTH = 128;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;

/**
 * True when the JSON text in `body` (UTF-8) nests arrays and objects deeper than `limit`.
 * One pass over the bytes before parsing; brackets inside strings do not count. UTF-8
 * continuation bytes are never ASCII, so multi-byte characters cannot look like brackets.
 */
export function jsonNestsDeeperThan(body: Uint8Array, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) {
      inString = true;
    } else if (c === OPEN_ARRAY || c === OPEN_OBJECT) {
      if (++depth > limit) return true;
    } else if (c === CLOSE_ARRAY || c === CLOSE_OBJECT) {
      depth--;
    }
  }
  return false;
}

/** The error body-parser reports for a body nested too deeply (`type` tells it from others). */
export class JsonTooDeepError extends Error {
  readonly type = 'entity.too.deep';
  readonly status = 400;
  readonly limit: number;
  constructor(limit: number) {
    super(`JSON nests deeper than ${limit} levels`);
    this.name = 'JsonTooDeepError';
    this.limit = limit;
  }
}

/**
 * A body-parser `verify` hook that refuses bodies nested deeper than MAX_JSON_DEPTH before
 * they are parsed. The raw bytes are in the body's declared charset: others than UTF-8 are
 * decoded first (one body-parser cannot decode either fails on its own, with its own error).
 */
export function refuseDeepJson(_req: unknown, _res: unknown, buf: Buffer, encoding: string): void {
  let utf8: Uint8Array = buf;
  if (encoding && !/^utf-?8$/i.test(encoding)) {
    try {
      utf8 = Buffer.from(new TextDecoder(encoding).decode(buf));
    } catch {
      return;
    }
  }
  if (jsonNestsDeeperThan(utf8, MAX_JSON_DEPTH)) throw new JsonTooDeepError(MAX_JSON_DEPTH);
}
