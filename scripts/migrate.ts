import 'reflect-metadata';
import { loadConfig } from '../src/config/env';
import { openDatabase } from '../src/db/open-database';
import { createLogger } from '../src/ops/logger';

/** `npm run migrate`: applies pending migrations and exits (a Kubernetes Job runs this). */
async function migrate(): Promise<void> {
  const config = loadConfig();
  const database = await openDatabase(config, createLogger(config.logLevel));
  await database.close();
  console.log('database is at the latest migration');
}

migrate().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
