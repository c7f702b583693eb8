import type {
  JSONRPCErrorResponse,
  JSONRPCMessage,
  JSONRPCNotification,
  JSONRPCRequest,
  JSONRPCResultResponse,
} from '@modelcontextprotocol/sdk/types.js';

// JSON-RPC message shapes, checked by hand. The SDK's `isJSONRPCRequest` and friends run a
// zod `safeParse` per call, and a relayed message met about ten of them on its way (the
// HTTP layer, the relay, the outbox, each direction): a few percent of the gateway's CPU
// per message. A message is validated once where it enters (downstream: `isMessage` here,
// as strict as the SDK's schemas about what a client may send; upstream: the SDK's client
// transports parse every message with its schema); inside the relay these guards only
// tell the four kinds apart.

type Rec = Record<string, unknown>;
const isObject = (v: unknown): v is Rec => typeof v === 'object' && v !== null && !Array.isArray(v);
/** JSON-RPC ids the MCP spec allows: a string or an integer (never null, never a fraction). */
const isId = (v: unknown) => typeof v === 'string' || (typeof v === 'number' && Number.isInteger(v));

/** A request: `method` and `id`, no `result` or `error`; `params` an object when present. */
export function isRequest(m: unknown): m is JSONRPCRequest {
  if (!isObject(m) || m['jsonrpc'] !== '2.0' || typeof m['method'] !== 'string' || !isId(m['id']))
    return false;
  return (m['params'] === undefined || isObject(m['params'])) && !('result' in m) && !('error' in m);
}

/** A notification: `method` and no `id`; `params` an object when present. */
export function isNotification(m: unknown): m is JSONRPCNotification {
  if (!isObject(m) || m['jsonrpc'] !== '2.0' || typeof m['method'] !== 'string' || 'id' in m) return false;
  return (m['params'] === undefined || isObject(m['params'])) && !('result' in m) && !('error' in m);
}

/** A successful response: `id` and an object `result`. */
export function isResult(m: unknown): m is JSONRPCResultResponse {
  return isObject(m) && m['jsonrpc'] === '2.0' && isId(m['id']) && isObject(m['result']) && !('method' in m);
}

/** An error response: an `error` with a numeric `code` and a string `message`. */
export function isErrorResponse(m: unknown): m is JSONRPCErrorResponse {
  if (!isObject(m) || m['jsonrpc'] !== '2.0' || 'method' in m || !isObject(m['error'])) return false;
  const error = m['error'];
  return (
    typeof error['code'] === 'number' &&
    typeof error['message'] === 'string' &&
    (m['id'] === undefined || m['id'] === null || isId(m['id']))
  );
}

/** Either kind of response. */
export const isResponse = (m: unknown): m is JSONRPCResultResponse | JSONRPCErrorResponse =>
  isResult(m) || isErrorResponse(m);

/** Any JSON-RPC message a client may send. */
export const isMessage = (m: unknown): m is JSONRPCMessage =>
  isRequest(m) || isNotification(m) || isResult(m) || isErrorResponse(m);
