import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type TestProject } from 'vitest/node';
import { startPostgresServer, startRedisServer } from './services';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Superuser URL of the harness's PostgreSQL; tests create their own databases in it. */
    pgUrl: string;
    redisUrl: string;
  }
}

export { REDIS_INSTALL_HINT } from './services';

/**
 * Starts a real PostgreSQL (the npm-shipped binaries the embedded default uses) and a real
 * redis-server on free ports in a temporary directory, unless TEST_DATABASE_URL /
 * TEST_REDIS_URL name existing ones; everything is removed afterwards, also when tests fail.
 */
export async function setup(project: TestProject): Promise<() => Promise<void>> {
  const dir = await mkdtemp(path.join(tmpdir(), 'context-server-test-'));
  const cleanup: (() => Promise<unknown>)[] = [() => rm(dir, { recursive: true, force: true })];
  const teardown = async () => {
    for (const step of cleanup.reverse()) {
      await step().catch((error: unknown) => console.error('test teardown:', error));
    }
  };

  try {
    let redisUrl = process.env.TEST_REDIS_URL;
    if (!redisUrl) {
      const redis = await startRedisServer(dir);
      cleanup.push(() => redis.stop());
      redisUrl = redis.url;
    }

    let pgUrl = process.env.TEST_DATABASE_URL;
    if (!pgUrl) {
      const pg = await startPostgresServer(dir);
      cleanup.push(() => pg.stop());
      pgUrl = pg.url;
    }

    project.provide('pgUrl', pgUrl);
    project.provide('redisUrl', redisUrl);
  } catch (error) {
    await teardown();
    throw error;
  }
  return teardown;
}
