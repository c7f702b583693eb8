import { pino, type Logger } from 'pino';

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

/** Creates the process logger: JSON lines on stdout, secrets redacted by key name. */
export function createLogger(options: {
  level: string;
  name: string;
  destination?: pino.DestinationStream;
}): Logger {
  return pino(
    {
      name: options.name,
      level: options.level,
      redact: { paths, censor: '[redacted]' },
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination,
  );
}
