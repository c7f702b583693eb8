import { pino, type Logger } from 'pino';
import { traceLogFields } from '../telemetry/tracing.ts';

export type { Logger };

/**
 * Key names whose values never reach a log line, wherever they appear. Matching by key
 * name catches secrets in objects we did not anticipate; values are replaced, not removed,
 * so a reader still sees that the field was there.
 */
export const REDACTED_KEYS = [
  'authorization',
  'cookie',
  'set-cookie',
  'password',
  'secret',
  'token',
  'accessToken',
  'refreshToken',
  'access_token',
  'refresh_token',
  'id_token',
  'apiKey',
  'api_key',
  'clientSecret',
  'client_secret',
  'x-api-key',
  'DATABASE_URL',
  'REDIS_URL',
  'databaseUrl',
  'connectionString',
] as const;

const paths = REDACTED_KEYS.flatMap((k) => {
  const key = /^[A-Za-z_$][\w$]*$/.test(k) ? k : `["${k}"]`;
  const dot = key.startsWith('[') ? key : `.${key}`;
  return [key, `*${dot}`, `*.*${dot}`, `req.headers${dot}`, `res.headers${dot}`];
});

const CENSOR = '[redacted]';

/**
 * A request URL as it may be logged: the path, and the query's parameter names with every
 * value replaced. Query strings carry one-time secrets (the sign-in `code` and `state` on
 * `/auth/callback` and `/oauth/upstream/callback`, `state` on `/oauth/upstream/start`, an
 * authorization request's PKCE challenge) and a list of sensitive names would miss the next
 * endpoint's, so no value is kept on any path. A part without `=` could be a value alone
 * (`?<token>`): it is replaced whole.
 */
export function loggableUrl(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const parts = url
    .slice(q + 1)
    .split('&')
    .filter(Boolean)
    .map((part) => {
      const eq = part.indexOf('=');
      return eq < 0 ? CENSOR : `${part.slice(0, eq)}=${CENSOR}`;
    });
  return parts.length ? `${url.slice(0, q)}?${parts.join('&')}` : url.slice(0, q);
}

/**
 * Creates the process logger: JSON lines on stdout, secrets redacted by key name, and the
 * trace id of the active span (when tracing is on) on every line.
 */
export function createLogger(options: {
  level: string;
  name: string;
  destination?: pino.DestinationStream;
}): Logger {
  return pino(
    {
      name: options.name,
      level: options.level,
      redact: { paths, censor: CENSOR },
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      // The active span's trace_id and span_id, so a log line leads to its trace (and back).
      mixin: traceLogFields,
    },
    options.destination,
  );
}
