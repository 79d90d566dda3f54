import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DataSource } from 'typeorm';
import { createDataSource, runMigrations } from '../../src/db/data-source';
import { MIGRATIONS } from '../../migrations';
import { createTestDatabase } from '../support/database';

const tables = async (ds: DataSource) =>
  (
    (await ds.query(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_name <> 'migrations' ORDER BY 1`,
    )) as { table_name: string }[]
  ).map((r) => r.table_name);

describe('migrations', () => {
  let ds: DataSource;
  beforeAll(async () => {
    ds = createDataSource({
      url: await createTestDatabase(),
      poolSize: 2,
      statementTimeoutMs: 10_000,
    });
    await ds.initialize();
  });
  afterAll(async () => {
    await ds?.destroy();
  });

  it('run up, all the way down, and up again on a real database', async () => {
    expect(await runMigrations(ds)).toHaveLength(MIGRATIONS.length);
    const created = await tables(ds);
    expect(created).toContain('users');

    for (let i = 0; i < MIGRATIONS.length; i++) {
      await ds.undoLastMigration({ transaction: 'each' });
    }
    expect(await tables(ds)).toEqual([]);

    expect(await runMigrations(ds)).toHaveLength(MIGRATIONS.length);
    expect(await tables(ds)).toEqual(created);
  });

  it('apply nothing the second time', async () => {
    expect(await runMigrations(ds)).toEqual([]);
  });
});
