// The workers process: consumes the BullMQ queue (REDIS_URL required). Never listens on HTTP.
import { loadConfig } from '@gateway/server/platform/config/config.ts';
import { createLogger } from '@gateway/server/platform/logging/logger.ts';
import { runProcess } from '@gateway/server/platform/process.ts';
import { openCore } from '@gateway/server/runtime.ts';

await runProcess('workers', async () => {
  const config = loadConfig(process.env);
  if (!config.redis) {
    throw new Error(
      'REDIS_URL is not set: without Redis the server runs jobs itself and no workers process is needed',
    );
  }
  const logger = createLogger({ level: config.log.level, name: 'workers' });
  const core = await openCore(config, logger, { role: 'workers' });
  await core.runner.start();
  logger.info({ database: core.database.kind }, 'workers consuming jobs');
  return {
    timeoutMs: config.shutdownTimeoutMs,
    logger,
    async stop() {
      await core.runner.stop(Math.max(100, config.shutdownTimeoutMs - 500));
      await core.close();
    },
  };
});
