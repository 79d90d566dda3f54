import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  findFreePort,
  startEmbeddedPostgres,
  type EmbeddedPostgres,
} from '../../src/db/embedded-postgres';
import { codes, createClient, type GqlClient } from '../support/graphql-client';
import {
  startServerProcess,
  stopAllServerProcesses,
  type ServerProcess,
} from '../support/server-process';
import { ADMIN_PASSWORD, ENCRYPTION_KEYS, JWT_SECRET } from '../support/test-app';

const SLOW = 120_000;

async function until<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  ms = 30_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) {
      return value;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * The server's own PostgreSQL and Redis (not the harness's, which other test files share),
 * so this file can stop and restart them.
 */
describe('outages of PostgreSQL and Redis', () => {
  let dir: string;
  let pg: EmbeddedPostgres;
  let pgPort: number;
  const pgPassword = randomBytes(12).toString('hex');
  let redis: ChildProcess;
  let redisPort: number;
  let server: ServerProcess;
  let gql: GqlClient;
  let token: string;

  const startRedis = () => {
    redis = spawn(
      'redis-server',
      ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      {
        stdio: 'ignore',
      },
    );
  };
  const ready = async () => {
    const res = await fetch(`${server.baseUrl}/ready`, { signal: AbortSignal.timeout(10_000) });
    return { status: res.status, body: (await res.json()) as { checks: Record<string, string> } };
  };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'outage-'));
    pgPort = await findFreePort();
    pg = await startEmbeddedPostgres({
      dir: path.join(dir, 'pg'),
      port: pgPort,
      password: pgPassword,
    });
    redisPort = await findFreePort();
    startRedis();
    server = await startServerProcess({
      env: {
        DATABASE_URL: pg.url,
        REDIS_URL: `redis://127.0.0.1:${redisPort}`,
        JWT_SECRET,
        ENCRYPTION_KEYS,
        ADMIN_PASSWORD,
        DB_STATEMENT_TIMEOUT_MS: '3000',
      },
    });
    gql = createClient(server.url);
    const login = await gql(
      'mutation($p: String!) { login(username: "admin", password: $p) { token } }',
      { p: ADMIN_PASSWORD },
    );
    token = login.data!.login.token;
  }, SLOW);

  afterAll(async () => {
    await stopAllServerProcesses();
    redis?.kill('SIGKILL');
    await pg?.stop().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }, SLOW);

  it(
    'turns not ready while PostgreSQL is down, answers SERVICE_UNAVAILABLE without hanging, and recovers without a restart',
    async () => {
      expect((await ready()).status).toBe(200);
      await pg.stop();

      const down = await until('not ready', async () => {
        const r = await ready();
        return r.status === 503 ? r : undefined;
      });
      expect(down.body.checks.database).toBe('failing');

      const started = Date.now();
      const res = await gql('{ contexts { totalCount } }', {}, token);
      expect(Date.now() - started).toBeLessThan(15_000);
      expect(codes(res)).toEqual(['SERVICE_UNAVAILABLE']);
      expect(JSON.stringify(res)).not.toMatch(/ECONNREFUSED|127\.0\.0\.1|SELECT/);

      pg = await startEmbeddedPostgres({
        dir: path.join(dir, 'pg'),
        port: pgPort,
        password: pgPassword,
      });
      await until('ready again', async () => ((await ready()).status === 200 ? true : undefined));
      const again = await gql('{ contexts { totalCount } }', {}, token);
      expect(again.data!.contexts.totalCount).toBe(0);
    },
    SLOW,
  );

  it(
    'turns not ready while Redis is down, keeps serving reads from PostgreSQL, and recovers without a restart',
    async () => {
      const models = await gql('{ models { id name } }', {}, token);
      const modelId = models.data!.models.find(
        (m: { name: string }) => m.name === 'sentiment-afinn',
      ).id;
      const created = await gql(
        'mutation($m: ID!) { createContext(input: { model: { modelId: $m } }) { id } }',
        { m: modelId },
        token,
      );
      const contextId = created.data!.createContext.id;

      redis.kill('SIGKILL');
      const down = await until('not ready', async () => {
        const r = await ready();
        return r.status === 503 ? r : undefined;
      });
      expect(down.body.checks.redis).toBe('failing');

      // The context cache is an accelerator: reads fall back to the database.
      const read = await gql(
        'query($id: ID!) { context(id: $id) { id } }',
        { id: contextId },
        token,
      );
      expect(read.data!.context.id).toBe(contextId);
      // The rate limiter needs Redis: inference is refused clearly, and quickly.
      const started = Date.now();
      const inferred = await gql(
        'mutation($m: ID!) { infer(modelId: $m, input: "good") { cached } }',
        { m: modelId },
        token,
      );
      expect(Date.now() - started).toBeLessThan(15_000);
      expect(codes(inferred)).toEqual(['SERVICE_UNAVAILABLE']);

      startRedis();
      await until('ready again', async () => ((await ready()).status === 200 ? true : undefined));
      const after = await gql(
        'mutation($m: ID!) { infer(modelId: $m, input: "good") { output } }',
        { m: modelId },
        token,
      );
      expect(after.data!.infer.output.label).toBe('positive');
    },
    SLOW,
  );
});
