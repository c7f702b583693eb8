import type { Response } from 'express';

/**
 * JSON-RPC error codes on the MCP wire (the second error family; REST uses AppError).
 * -32700..-32600 are JSON-RPC's own; -32001 is the SDK's "session not found"/timeout;
 * -32003 is ours for policy refusals, so clients can tell "not allowed" from "broken".
 */
export const RpcCode = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
  SessionNotFound: -32001,
  Forbidden: -32003,
} as const;

/** Writes a JSON-RPC error response with an HTTP status (for errors before a session exists). */
export function sendRpcError(
  res: Response,
  status: number,
  code: number,
  message: string,
  id: unknown = null,
): void {
  if (res.headersSent) return;
  res.status(status).json({ jsonrpc: '2.0', error: { code, message }, id: id ?? null });
}
