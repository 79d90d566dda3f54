import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createClient as createWsClient, type Client as WsClient } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { WebSocket } from 'ws';
import { createTestDatabase } from '../support/database';
import { codes, createClient, type GqlClient } from '../support/graphql-client';
import {
  startServerProcess,
  stopAllServerProcesses,
  type ServerProcess,
} from '../support/server-process';
import { ENCRYPTION_KEYS } from '../support/test-app';

/** Replica mode: an external PostgreSQL and Redis, shared secrets, as in a Kubernetes rollout. */

const SLOW = 90_000; // 90 s
const ADMIN_PASSWORD = 'admin-password-for-e2e-tests';
const JWT_SECRET = 'an-e2e-secret-that-is-at-least-32-bytes-long';
const NIL_UUID = '00000000-0000-0000-0000-000000000000';

const LOGIN = `mutation($u: String!, $p: String!) {
  login(username: $u, password: $p) { token }
}`;
const CREATE_USER = `mutation($input: CreateUserInput!) {
  createUser(input: $input) { id username role }
}`;
const USER_COUNT = '{ users { totalCount } }';
const HISTORY = `subscription { contextHistory(contextId: "${NIL_UUID}") { sequence } }`;

type FormattedError = { message: string; extensions?: Record<string, unknown> };

/** What a graphql-ws subscription delivered first. */
type FirstEvent =
  | { kind: 'next'; errors: FormattedError[] | undefined }
  | { kind: 'error'; error: unknown }
  | { kind: 'complete' };

function firstEvent(client: WsClient, query: string): Promise<FirstEvent> {
  return new Promise((resolve) => {
    const unsubscribe = client.subscribe(
      { query },
      {
        next: (result) => {
          unsubscribe();
          resolve({ kind: 'next', errors: result.errors as FormattedError[] | undefined });
        },
        error: (error) => resolve({ kind: 'error', error }),
        complete: () => resolve({ kind: 'complete' }),
      },
    );
  });
}

/** The error codes of a subscription's first event, whichever way graphql-ws delivered them. */
function eventCodes(event: FirstEvent): unknown[] {
  if (event.kind === 'next') {
    return (event.errors ?? []).map((e) => e.extensions?.code);
  }
  if (event.kind === 'error' && Array.isArray(event.error)) {
    return (event.error as FormattedError[]).map((e) => e.extensions?.code);
  }
  return [];
}

describe('replica mode, started as processes on a shared PostgreSQL and Redis', () => {
  let env: Record<string, string>;
  let dataDir: string;
  let server: ServerProcess;
  let gql: GqlClient;
  let adminToken: string;
  const wsClients: WsClient[] = [];

  const login = async (client: GqlClient, username: string, password: string) => {
    const res = await client<{ login: { token: string } | null }>(LOGIN, {
      u: username,
      p: password,
    });
    const token = res.data?.login?.token;
    if (!token) {
      throw new Error(`login failed: ${JSON.stringify(res.errors)}`);
    }
    return token;
  };

  const ws = (connectionParams?: Record<string, unknown>) => {
    const client = createWsClient({
      url: server.url.replace(/^http/, 'ws'),
      webSocketImpl: WebSocket,
      connectionParams,
      retryAttempts: 0,
      lazy: true,
    });
    wsClients.push(client);
    return client;
  };

  beforeAll(async () => {
    // DATA_DIR is unused with DATABASE_URL; a private one keeps a stray write out of the repo.
    dataDir = await mkdtemp(path.join(tmpdir(), 'context-server-e2e-'));
    env = {
      DATABASE_URL: await createTestDatabase(),
      REDIS_URL: inject('redisUrl'),
      JWT_SECRET,
      ENCRYPTION_KEYS,
      ADMIN_PASSWORD,
      DATA_DIR: dataDir,
    };
    server = await startServerProcess({ env });
    gql = createClient(server.url);
    adminToken = await login(gql, 'admin', ADMIN_PASSWORD);
  }, SLOW);

  afterAll(async () => {
    await Promise.all(wsClients.map((client) => client.dispose()));
    await stopAllServerProcesses();
    if (dataDir) {
      await rm(dataDir, { recursive: true, force: true });
    }
  }, SLOW);

  it('reports its database and Redis as ready, and does not call itself single-replica', async () => {
    const res = await fetch(`${server.baseUrl}/ready`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { checks: Record<string, string> };
    expect(body.checks.database).toBe('ok');
    expect(body.checks.redis).toBe('ok');
    expect(server.output()).not.toContain('REDIS_URL is unset');
  });

  it(
    'accepts on one replica a token issued by another',
    async () => {
      const other = await startServerProcess({ env });
      try {
        const token = await login(gql, 'admin', ADMIN_PASSWORD);
        const me = await createClient(other.url)('{ me { username role } }', {}, token);
        expect(me.errors).toBeUndefined();
        expect(me.data?.me).toEqual({ username: 'admin', role: 'ADMIN' });

        const back = await login(createClient(other.url), 'admin', ADMIN_PASSWORD);
        const meBack = await gql('{ me { username } }', {}, back);
        expect(meBack.data?.me).toEqual({ username: 'admin' });
      } finally {
        expect(await other.stop('SIGTERM')).toBe(0);
      }
    },
    SLOW,
  );

  it('refuses a login with an empty username as BAD_USER_INPUT', async () => {
    const res = await gql(LOGIN, { u: '', p: ADMIN_PASSWORD });
    expect(codes(res)).toEqual(['BAD_USER_INPUT']);
    expect(res.data?.login ?? null).toBeNull();
  });

  it('refuses a wrong password as UNAUTHENTICATED', async () => {
    const res = await gql(LOGIN, { u: 'admin', p: 'not-the-password' });
    expect(codes(res)).toEqual(['UNAUTHENTICATED']);
  });

  it('refuses createUser without a token as UNAUTHENTICATED', async () => {
    const res = await gql(CREATE_USER, {
      input: { username: 'anonymous-made', password: 'some-password' },
    });
    expect(codes(res)).toEqual(['UNAUTHENTICATED']);
  });

  it('refuses createUser by a plain USER as FORBIDDEN', async () => {
    const created = await gql(
      CREATE_USER,
      { input: { username: 'plain-user', password: 'plain-user-password', role: 'USER' } },
      adminToken,
    );
    expect(created.errors).toBeUndefined();
    const userToken = await login(gql, 'plain-user', 'plain-user-password');

    const res = await gql(
      CREATE_USER,
      { input: { username: 'made-by-user', password: 'some-password' } },
      userToken,
    );
    expect(codes(res)).toEqual(['FORBIDDEN']);
  });

  it('refuses a username that differs from a taken one only in case as CONFLICT, and stores nothing', async () => {
    const first = await gql(
      CREATE_USER,
      { input: { username: 'Grace', password: 'grace-password' } },
      adminToken,
    );
    expect(first.errors).toBeUndefined();
    const before = await gql<{ users: { totalCount: number } }>(USER_COUNT, {}, adminToken);

    const res = await gql(
      CREATE_USER,
      { input: { username: 'gRACE', password: 'another-password' } },
      adminToken,
    );
    expect(codes(res)).toEqual(['CONFLICT']);

    const after = await gql<{ users: { totalCount: number } }>(USER_COUNT, {}, adminToken);
    expect(after.data?.users.totalCount).toBe(before.data?.users.totalCount);
  });

  it('answers a malformed JSON body with 400 BAD_REQUEST and no stack trace', async () => {
    const res = await fetch(server.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"query": "{ me { id } }"',
    });
    expect(res.status).toBe(400);
    const text = await res.text();
    const body = JSON.parse(text) as { errors: FormattedError[] };
    expect(body.errors[0]?.extensions?.code).toBe('BAD_REQUEST');
    expect(text).not.toMatch(/\bat \S+ \(|\bat \S+:\d+:\d+|node_modules|stack/i);
  });

  it('closes a WebSocket whose connection_init carries a refused token with 4401', async () => {
    const event = await firstEvent(ws({ authorization: 'Bearer garbage' }), HISTORY);
    expect(event.kind).toBe('error');
    expect((event as { error: { code?: number } }).error.code).toBe(4401);
  });

  it('answers contextHistory of a context that does not exist as NOT_FOUND', async () => {
    const event = await firstEvent(ws({ authorization: `Bearer ${adminToken}` }), HISTORY);
    expect(eventCodes(event)).toEqual(['NOT_FOUND']);
  });

  it('answers contextHistory over an anonymous WebSocket as UNAUTHENTICATED', async () => {
    const event = await firstEvent(ws(), HISTORY);
    expect(eventCodes(event)).toEqual(['UNAUTHENTICATED']);
  });

  it('exits 0 within 10 s of SIGTERM', async () => {
    await Promise.all(wsClients.map((client) => client.dispose()));
    const started = Date.now();
    expect(await server.stop('SIGTERM')).toBe(0);
    expect(Date.now() - started).toBeLessThan(10_000);
  }, 20_000);
});
