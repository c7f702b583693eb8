import type { RequestHandler } from 'express';
import type { z, ZodType } from 'zod';
import type { FieldIssue } from '@gateway/shared';
import { AppError } from './errors.ts';

/** Turns zod issues into `{ path, message }` pairs rooted at `where` (`body`, `query`, ...). */
export function toFieldIssues(error: z.ZodError, where: string): FieldIssue[] {
  return error.issues.map((i) => ({
    path: [where, ...i.path.map(String)].join('.'),
    message: i.message,
  }));
}

/** Parses `value` with `schema` or throws a 400 `validation_failed` naming every bad field. */
export function parseOr400<T>(schema: ZodType<T>, value: unknown, where: string): T {
  const result = schema.safeParse(value);
  if (!result.success) {
    const issues = toFieldIssues(result.error, where);
    const first = issues[0];
    throw new AppError('validation_failed', first ? `${first.path}: ${first.message}` : 'invalid request', {
      issues,
    });
  }
  return result.data;
}

/**
 * Validation middleware: replaces `req.body` (and stores parsed query/params on
 * `res.locals`) with the parsed value, or answers 400 with the failing field paths.
 */
export function validate(schemas: { body?: ZodType; query?: ZodType; params?: ZodType }): RequestHandler {
  return (req, res, next) => {
    if (schemas.body) req.body = parseOr400(schemas.body, req.body ?? {}, 'body');
    if (schemas.query) res.locals.query = parseOr400(schemas.query, req.query, 'query');
    if (schemas.params) res.locals.params = parseOr400(schemas.params, req.params, 'params');
    next();
  };
}
