import 'reflect-metadata';
import { ConfigError, loadConfig } from './config/env';
import { createLogger } from './ops/logger';
import { startApp } from './server/app';

/** Composition root: config → resources → servers; SIGTERM/SIGINT dispose in reverse. */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  const logger = createLogger(config.logLevel);
  const app = await startApp(config, logger);

  let signalled = false;
  const shutdown = (signal: NodeJS.Signals) => {
    if (signalled) {
      return;
    }
    signalled = true;
    logger.info({ signal }, 'shutting down');
    const timer = setTimeout(() => {
      logger.error({ graceMs: config.shutdownGraceMs }, 'shutdown grace period exceeded; exiting');
      logger.flush();
      process.exit(1);
    }, config.shutdownGraceMs);
    timer.unref();
    void app.stop().then(() => {
      logger.info('stopped');
      logger.flush();
      process.exitCode = 0;
    });
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

main().catch((error: unknown) => {
  process.stderr.write(
    `fatal: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exit(1);
});
