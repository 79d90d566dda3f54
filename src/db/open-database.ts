import path from 'node:path';
import { type DataSource } from 'typeorm';
import { type Config } from '../config/env';
import { type Logger } from '../ops/logger';
import { loadOrCreateLocalSecrets } from '../security/local-secrets';
import { acquireDataDirLock } from './data-dir-lock';
import { createDataSource, runMigrations } from './data-source';
import { startEmbeddedPostgres } from './embedded-postgres';

export interface OpenDatabase {
  readonly dataSource: DataSource;
  /** True when this process started its own PostgreSQL under DATA_DIR. */
  readonly embedded: boolean;
  /** JWT_SECRET and ENCRYPTION_KEYS, or in the embedded default those persisted in DATA_DIR. */
  readonly secrets: { readonly jwtSecret: string; readonly encryptionKeys: string };
  /** Releases what was opened, newest first. */
  close(): Promise<void>;
}

/**
 * The configured database, or (DATABASE_URL unset) an embedded cluster under DATA_DIR,
 * migrated to the latest schema. Shared by the server and `npm run migrate`.
 */
export async function openDatabase(
  config: Config,
  logger?: Logger,
  onQuery?: () => void,
): Promise<OpenDatabase> {
  const cleanup: (() => Promise<unknown>)[] = [];
  const close = async () => {
    for (const step of cleanup.reverse()) {
      await step();
    }
  };
  try {
    let url = config.database.url;
    let jwtSecret = config.auth.jwtSecret;
    let encryptionKeys = config.encryptionKeys;
    if (url === undefined) {
      cleanup.push(await acquireDataDirLock(config.dataDir));
      const secrets = await loadOrCreateLocalSecrets(config.dataDir);
      jwtSecret ??= secrets.jwtSecret;
      encryptionKeys ??= secrets.encryptionKeys;
      const pg = await startEmbeddedPostgres({
        dir: path.join(config.dataDir, 'pg'),
        port: config.database.embeddedPort,
        password: secrets.postgresPassword,
        onLog: (message) => logger?.info({ component: 'embedded-postgres' }, message),
      });
      cleanup.push(() => pg.stop());
      url = pg.url;
    }
    const dataSource = createDataSource({ ...config.database, url, onQuery });
    await dataSource.initialize();
    cleanup.push(() => dataSource.destroy());
    const applied = await runMigrations(dataSource);
    if (applied.length) {
      logger?.info({ migrations: applied }, 'migrations applied');
    }
    // loadConfig requires both secrets whenever the database is not the embedded one.
    return {
      dataSource,
      embedded: config.database.url === undefined,
      secrets: { jwtSecret: jwtSecret!, encryptionKeys: encryptionKeys! },
      close,
    };
  } catch (error) {
    await close().catch(() => undefined);
    throw error;
  }
}
