// The workers process: consumes the BullMQ queue (REDIS_URL required). Never listens on HTTP.
import { loadConfig } from '@gateway/server/platform/config/config.ts';
import { createLogger } from '@gateway/server/platform/logging/logger.ts';
import { runProcess } from '@gateway/server/platform/process.ts';
import { buildServices, openCore, type Services } from '@gateway/server/runtime.ts';

await runProcess('workers', async () => {
  const config = loadConfig(process.env);
  if (!config.redis) {
    throw new Error(
      'REDIS_URL is not set: without Redis the server runs jobs itself and no workers process is needed',
    );
  }
  if (config.database.kind === 'pglite') {
    throw new Error(
      'DATABASE_URL is not set: the workers process shares a PostgreSQL database with the servers (the embedded PGlite database belongs to the server process alone)',
    );
  }
  const logger = createLogger({ level: config.log.level, name: 'workers' });
  const core = await openCore(config, logger, { role: 'workers' });
  // The same feature services as the server (registry, credentials, gateway, audit): job
  // handlers call them, and buildServices defines the jobs that need them.
  let services: Services | undefined;
  try {
    services = await buildServices(core);
    await core.runner.start();
  } catch (err) {
    await core.runner.stop(1_000).catch(() => {});
    services?.access.stop();
    await services?.audit.stop(1_000).catch(() => {});
    await core.close();
    throw err;
  }
  const running = services;
  logger.info({ database: core.database.kind }, 'workers consuming jobs');
  return {
    timeoutMs: config.shutdownTimeoutMs,
    logger,
    async stop() {
      const started = Date.now();
      const budget = config.shutdownTimeoutMs;
      await core.runner.stop(Math.max(100, budget - 1_000));
      await running.gateway.close();
      running.access.stop();
      await running.audit.stop(Math.max(100, budget - (Date.now() - started) - 300));
      await core.close();
    },
  };
});
