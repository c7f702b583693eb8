import type { Response } from 'express';

/**
 * JSON-RPC error codes on the MCP wire (the second error family; REST uses AppError).
 * -32700..-32600 are JSON-RPC's own; -32000 is the SDK's generic server error (its transport
 * answers a refused Host with it, and so do we); -32001 is the SDK's "session not found"/timeout;
 * -32003 is ours for policy refusals, so clients can tell "not allowed" from "broken";
 * -32004 is ours for "the upstream needs the user to connect their account (OAuth)", with
 * `data: { server, connectUrl }`.
 */
export const RpcCode = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
  ServerError: -32000,
  SessionNotFound: -32001,
  Forbidden: -32003,
  AuthorizationRequired: -32004,
} as const;

/** A JSON-RPC error body (code, message, optional data). */
export interface RpcError {
  code: number;
  message: string;
  data?: unknown;
}

/**
 * An upstream that requires OAuth refused the user (no tokens, or tokens it no longer
 * accepts, and no refresh helped): the user must connect their account at `connectUrl`.
 */
export class UpstreamAuthorizationRequired extends Error {
  readonly server: string;
  readonly connectUrl: string | undefined;

  constructor(server: string, connectUrl: string | undefined) {
    super(
      connectUrl
        ? `Server "${server}" needs your authorization: open ${connectUrl} in your browser to connect your account, then try again`
        : `Server "${server}" needs your authorization: connect your account (POST /api/servers/${server}/oauth/connect), then try again`,
    );
    this.name = 'UpstreamAuthorizationRequired';
    this.server = server;
    this.connectUrl = connectUrl;
  }

  toRpcError(): RpcError {
    return {
      code: RpcCode.AuthorizationRequired,
      message: this.message,
      data: { server: this.server, ...(this.connectUrl ? { connectUrl: this.connectUrl } : {}) },
    };
  }
}

/**
 * A new MCP session would pass a limit (GATEWAY_MAX_SESSIONS*, GATEWAY_MAX_STDIO*): 429 when
 * it is the user's own limit (they can close sessions), 503 when it is the whole process's.
 */
export class SessionLimitReached extends Error {
  readonly status: 429 | 503;
  readonly limit: string;

  constructor(status: 429 | 503, limit: string, message: string) {
    super(message);
    this.name = 'SessionLimitReached';
    this.status = status;
    this.limit = limit;
  }
}

/** The JSON-RPC error a failure should reach the client as, when it is one we know (cause chain included). */
export function rpcErrorOf(error: unknown): RpcError | undefined {
  for (let e = error, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof UpstreamAuthorizationRequired) return e.toRpcError();
  }
  return undefined;
}

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
