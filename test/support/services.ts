import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { Redis } from 'ioredis';
import { findFreePort, startEmbeddedPostgres } from '../../src/db/embedded-postgres';

/**
 * The real PostgreSQL and Redis that the test harness (global-setup.ts) and the benchmarks
 * (bench/run.ts) run against: each on a free port, its files under a directory the caller
 * owns and removes.
 */
export interface RunningService {
  readonly url: string;
  stop(): Promise<void>;
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
 * A redis-server with no persistence on 127.0.0.1, killed with this process if the caller
 * never stops it. Throws with the install command when redis-server is missing.
 */
export async function startRedisServer(dir: string): Promise<RunningService> {
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
  const service: RunningService = {
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      process.off('exit', kill);
      child.kill('SIGTERM');
    },
  };
  try {
    await waitForRedis(service.url, child);
  } catch (error) {
    await service.stop();
    throw error;
  }
  return service;
}

/**
 * A PostgreSQL cluster from the npm-shipped binaries the embedded default uses, in
 * `<dir>/pg`; `url` is the superuser's, so callers create their own databases in it.
 */
export async function startPostgresServer(dir: string): Promise<RunningService> {
  const pg = await startEmbeddedPostgres({
    dir: path.join(dir, 'pg'),
    port: 0,
    password: randomBytes(16).toString('hex'),
    // Durability is pointless for a throwaway cluster; speed is not.
    settings: {
      fsync: 'off',
      synchronous_commit: 'off',
      full_page_writes: 'off',
      max_connections: '300',
    },
  });
  return { url: pg.url, stop: () => pg.stop() };
}
