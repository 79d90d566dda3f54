import { DataSource, type EntityManager } from 'typeorm';

/**
 * Runs SQL and returns its rows, whatever the statement. (TypeORM's `query` returns
 * `[rows, count]` for UPDATE/DELETE … RETURNING but plain rows for SELECT and INSERT.)
 */
export async function queryRows<T = Record<string, unknown>>(
  target: DataSource | EntityManager,
  sql: string,
  params: unknown[] = [],
): Promise<T[]> {
  if (target instanceof DataSource) {
    const runner = target.createQueryRunner();
    try {
      return (await runner.query(sql, params, true)).records as T[];
    } finally {
      await runner.release();
    }
  }
  const runner = target.queryRunner;
  if (!runner) {
    throw new Error('queryRows needs an EntityManager bound to a query runner (a transaction)');
  }
  return (await runner.query(sql, params, true)).records as T[];
}
