// The HTTP process. Parses configuration, starts the server, stops it on SIGTERM/SIGINT.
import { loadConfig } from './platform/config/config.ts';
import { createLogger } from './platform/logging/logger.ts';
import { startServer } from './runtime.ts';
import { runProcess } from './platform/process.ts';

await runProcess('server', async () => {
  const config = loadConfig(process.env);
  if (config.redis && config.database.kind === 'pglite') {
    // With Redis the server only queues jobs and the workers process runs them; the embedded
    // database opens in one process only, so those jobs would never run.
    throw new Error(
      'REDIS_URL needs DATABASE_URL: with Redis, jobs run in a separate workers process, and the embedded database (PGlite) opens in one process only. Set DATABASE_URL to a PostgreSQL database, or unset REDIS_URL to run everything in this process',
    );
  }
  const logger = createLogger({ level: config.log.level, name: 'server' });
  const server = await startServer(config, logger);
  logger.info(
    { url: server.url, database: server.core.database.kind, jobs: server.core.runner.kind },
    'gateway listening',
  );
  if (server.generatedAdminKey) {
    // Printed once, on the first start, to the terminal only (never to the log stream).
    process.stdout.write(
      `\nAn admin API key was generated. It is shown only this once; store it now:\n\n    ${server.generatedAdminKey}\n\n` +
        'Use it as "Authorization: Bearer <key>". Set ADMIN_BOOTSTRAP_TOKEN to choose your own.\n',
    );
  }
  process.stdout.write(`\nMCP gateway is running at ${config.http.publicUrl ?? server.url}\n\n`);
  return { stop: () => server.stop(), timeoutMs: config.shutdownTimeoutMs, logger };
});
