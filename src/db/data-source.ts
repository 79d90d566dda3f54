import { DataSource, type Logger } from 'typeorm';
import { MIGRATIONS } from '../../migrations';
import {
  ContextEntity,
  ErasureReceiptEntity,
  HistoryEntryEntity,
} from '../domains/context/context.entity';
import { ModelEntity } from '../domains/model/model.entity';
import { User } from '../domains/user/user.entity';

export const ENTITIES = [
  User,
  ModelEntity,
  ContextEntity,
  HistoryEntryEntity,
  ErasureReceiptEntity,
];

export interface DataSourceOptions {
  readonly url: string;
  readonly poolSize: number;
  readonly statementTimeoutMs: number;
  /** Called once per SQL statement sent (the db_queries_total metric, the N+1 tests). */
  readonly onQuery?: () => void;
}

/** A TypeORM logger that only counts statements; errors surface as exceptions anyway. */
function countingLogger(onQuery: () => void): Logger {
  const ignore = () => undefined;
  return {
    logQuery: onQuery,
    logQueryError: ignore,
    logQuerySlow: ignore,
    logSchemaBuild: ignore,
    logMigration: ignore,
    log: ignore,
  };
}

export function createDataSource(options: DataSourceOptions): DataSource {
  return new DataSource({
    type: 'postgres',
    url: options.url,
    entities: ENTITIES,
    migrations: MIGRATIONS,
    migrationsTableName: 'migrations',
    synchronize: false,
    ...(options.onQuery
      ? { logger: countingLogger(options.onQuery), logging: ['query' as const] }
      : { logging: false }),
    // Passed to pg.Pool: bounded waits so a stuck database yields an error, not a hang.
    extra: {
      max: options.poolSize,
      connectionTimeoutMillis: 5_000, // 5 s
      statement_timeout: options.statementTimeoutMs,
      application_name: 'context-server',
    },
  });
}

/**
 * Runs pending migrations under a cluster-wide advisory lock, so replicas starting together
 * do not race; each migration runs in its own transaction.
 */
export async function runMigrations(dataSource: DataSource): Promise<string[]> {
  const runner = dataSource.createQueryRunner();
  await runner.connect();
  try {
    await runner.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_ID]);
    const done = await dataSource.runMigrations({ transaction: 'each' });
    return done.map((m) => m.name);
  } finally {
    await runner.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_ID]).catch(() => undefined);
    await runner.release();
  }
}

/** An arbitrary constant naming this application's migration lock. */
const MIGRATION_LOCK_ID = 7_340_211;
