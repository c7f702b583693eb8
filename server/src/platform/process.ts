import type { Logger } from './logging/logger.ts';

interface Started {
  stop(): Promise<void>;
  timeoutMs: number;
  logger: Logger;
}

/**
 * Runs a process's start function and owns its lifecycle: start-up failures print one
 * line (`<name>: <reason>`) and exit 1, never a stack dump; SIGTERM/SIGINT stop it
 * gracefully, and a stop that overruns its budget exits anyway with code 1.
 */
export async function runProcess(name: string, start: () => Promise<Started>): Promise<void> {
  let started: Started;
  try {
    started = await start();
  } catch (err) {
    const e = err as Error;
    process.stderr.write(`${name}: ${e?.message ?? String(err)}\n`);
    process.exit(1);
  }
  const { logger } = started;
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const force = setTimeout(() => {
      logger.error({ timeoutMs: started.timeoutMs }, 'shutdown took too long; exiting');
      process.exit(1);
    }, started.timeoutMs + 1_000);
    force.unref();
    started.stop().then(
      () => {
        logger.info('stopped');
        logger.flush?.();
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('unhandledRejection', (reason) => {
    // Logged, not fatal: one failing background task must not take every session down.
    logger.error({ err: reason }, 'unhandled promise rejection');
  });
}
