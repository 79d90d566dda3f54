import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { type TestProject } from 'vitest/node';
import { findFreePort, startEmbeddedPostgres } from '../../src/db/embedded-postgres';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Superuser URL of the harness's PostgreSQL; tests create their own databases in it. */
    pgUrl: string;
    redisUrl: string;
  }
}

export const REDIS_INSTALL_HINT = 'apt-get update && apt-get install -y redis-server';

async function waitForRedis(url: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`redis-server exited with code ${child.exitCode}`);
    }
    const client = new Redis(url, {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    client.on('error', () => undefined); // refused while redis-server starts: retried below
    try {
      await client.connect();
      await client.ping();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    } finally {
      client.disconnect();
    }
  }
  throw new Error('redis-server did not answer within 10 s');
}

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
      if (spawnSync('redis-server', ['--version']).error) {
        throw new Error(
          `redis-server is not installed; the tests need a real Redis. Install it with:\n  ${REDIS_INSTALL_HINT}`,
        );
      }
      const port = await findFreePort();
      const child = spawn(
        'redis-server',
        [
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--save',
          '',
          '--appendonly',
          'no',
          '--dir',
          dir,
        ],
        { stdio: 'ignore' },
      );
      const kill = () => child.kill('SIGKILL');
      process.once('exit', kill);
      cleanup.push(async () => {
        process.off('exit', kill);
        child.kill('SIGTERM');
      });
      redisUrl = `redis://127.0.0.1:${port}`;
      await waitForRedis(redisUrl, child);
    }

    let pgUrl = process.env.TEST_DATABASE_URL;
    if (!pgUrl) {
      const pg = await startEmbeddedPostgres({
        dir: path.join(dir, 'pg'),
        port: 0,
        password: randomBytes(16).toString('hex'),
        // Durability is pointless for a throwaway test cluster; speed is not.
        settings: {
          fsync: 'off',
          synchronous_commit: 'off',
          full_page_writes: 'off',
          max_connections: '300',
        },
      });
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
