import 'reflect-metadata';
import { inject } from 'vitest';
import { loadConfig } from '../../src/config/env';
import { createLogger } from '../../src/ops/logger';
import { startApp, type RunningApp } from '../../src/server/app';
import { createTestDatabase } from './database';
import { createClient, type GqlClient } from './graphql-client';

/** The login operation every test app runs first (trusted-document tests must list it). */
export const LOGIN_OPERATION =
  'mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token } }';

export const ADMIN_PASSWORD = 'admin-password-for-tests';
export const JWT_SECRET = 'a-test-secret-that-is-at-least-32-bytes-long';
/** Two fixed test keys: `test2` encrypts, `test1` is an older key that still decrypts. */
export const ENCRYPTION_KEYS = `test2:${Buffer.alloc(32, 2).toString('base64')},test1:${Buffer.alloc(32, 1).toString('base64')}`;

/**
 * Environment of a server process in replica mode on a database of the harness: the shared
 * Redis and the test secrets, as replicas behind one Service would have.
 */
export function replicaEnv(databaseUrl: string): Record<string, string> {
  return {
    DATABASE_URL: databaseUrl,
    REDIS_URL: inject('redisUrl'),
    JWT_SECRET,
    ENCRYPTION_KEYS,
    ADMIN_PASSWORD,
  };
}

export interface TestApp {
  readonly app: RunningApp;
  readonly gql: GqlClient;
  readonly databaseUrl: string;
  /** Logs in and returns the token. */
  login(username: string, password: string): Promise<string>;
  /** Creates a user as the admin and returns its id and token. */
  createUser(username: string, role?: string): Promise<{ id: string; token: string }>;
  adminToken: string;
  stop(): Promise<void>;
}

/**
 * The real server, in-process, on a fresh database in the harness's PostgreSQL (or the one
 * given) and its Redis unless `redis: false`, on a free port.
 */
export async function startTestApp(
  options: {
    redis?: boolean;
    env?: Record<string, string>;
    /** Another replica of an app already running: its database instead of a fresh one. */
    databaseUrl?: string;
  } = {},
): Promise<TestApp> {
  const databaseUrl = options.databaseUrl ?? (await createTestDatabase());
  const config = loadConfig({
    NODE_ENV: 'test',
    PORT: '0',
    HOST: '127.0.0.1',
    DATABASE_URL: databaseUrl,
    ...(options.redis === false ? {} : { REDIS_URL: inject('redisUrl') }),
    JWT_SECRET,
    ENCRYPTION_KEYS,
    ADMIN_PASSWORD,
    LOG_LEVEL: 'silent',
    // Every test app logs in as "admin" through one shared Redis; the login throttle has its
    // own test with low limits.
    LOGIN_RATE_LIMIT_PER_MINUTE: '100000',
    LOGIN_IP_RATE_LIMIT_PER_MINUTE: '1000000',
    ...options.env,
  });
  const app = await startApp(config, createLogger(process.env.TEST_LOG_LEVEL ?? 'silent'));
  const gql = createClient(app.url);
  const login = async (username: string, password: string) => {
    const res = await gql<{ login: { token: string } }>(LOGIN_OPERATION, {
      u: username,
      p: password,
    });
    if (!res.data?.login) {
      throw new Error(`login failed: ${JSON.stringify(res.errors)}`);
    }
    return res.data.login.token;
  };
  const adminToken = await login('admin', ADMIN_PASSWORD);
  return {
    app,
    gql,
    databaseUrl,
    login,
    adminToken,
    async createUser(username, role = 'USER') {
      const password = `${username}-password`;
      const res = await gql<{ createUser: { id: string } }>(
        'mutation($input: CreateUserInput!) { createUser(input: $input) { id } }',
        { input: { username, password, role } },
        adminToken,
      );
      if (!res.data?.createUser) {
        throw new Error(`createUser failed: ${JSON.stringify(res.errors)}`);
      }
      return { id: res.data.createUser.id, token: await login(username, password) };
    },
    stop: () => app.stop(),
  };
}
