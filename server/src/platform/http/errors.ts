import type { ErrorCode, FieldIssue } from '@gateway/shared';

const STATUS: Record<ErrorCode, number> = {
  bad_request: 400,
  validation_failed: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  payload_too_large: 413,
  rate_limited: 429,
  not_ready: 503,
  upstream_unavailable: 502,
  internal: 500,
};

/**
 * An error the REST layer turns into a JSON error body. `expose` says whether `message` is
 * safe and useful to show the caller; internal errors are reported as a generic message
 * with the request id, never with their own text.
 * (JSON-RPC errors on the MCP wire are a separate family; see the gateway feature.)
 */
export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly issues: FieldIssue[] | undefined;
  readonly headers: Record<string, string> | undefined;
  /** True when the caller caused it (4xx): its message is shown to the caller. */
  readonly expose: boolean;

  constructor(
    code: ErrorCode,
    message: string,
    options: { issues?: FieldIssue[]; headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.status = STATUS[code];
    this.issues = options.issues;
    this.headers = options.headers;
    this.expose = this.status < 500 || code === 'not_ready' || code === 'upstream_unavailable';
  }
}

export const badRequest = (message: string, issues?: FieldIssue[]) =>
  new AppError(issues ? 'validation_failed' : 'bad_request', message, issues ? { issues } : {});
export const notFound = (what: string) => new AppError('not_found', `${what} not found`);
export const forbidden = (message = 'you are not allowed to do this') => new AppError('forbidden', message);
export const unauthenticated = (message = 'authentication required') =>
  new AppError('unauthenticated', message);
export const conflict = (message: string) => new AppError('conflict', message);
