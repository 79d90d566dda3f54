import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createClient as createWsClient, type Client as WsClient } from 'graphql-ws';
import { Redis } from 'ioredis';
import { Client as PgClient } from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { WebSocket } from 'ws';
import { Topic } from '../../src/realtime/topics';
import { createTestDatabase } from '../support/database';
import { createClient, type GqlClient } from '../support/graphql-client';
import {
  startServerProcess,
  stopAllServerProcesses,
  type ServerProcess,
} from '../support/server-process';
import { ADMIN_PASSWORD, replicaEnv } from '../support/test-app';

/**
 * contextHistory across replicas: two server processes on one PostgreSQL and one Redis. An
 * entry appended on either replica reaches a subscriber on the other, and a subscriber whose
 * replica dies resumes on the survivor with afterSequence, losing and repeating nothing.
 */

const SLOW = 120_000; // 120 s
const WAIT = { timeout: 20_000, interval: 20 };
const SHUTDOWN_GRACE_MS = 5_000; // 5 s

const LOGIN = 'mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token } }';
const CREATE_CONTEXT = `mutation($input: CreateContextInput!) { createContext(input: $input) { id } }`;
const INFER = `mutation($m: ID!, $input: JSON!, $c: ID) {
  infer(modelId: $m, input: $input, contextId: $c) { historyEntry { sequence } }
}`;
const HISTORY = `subscription($c: ID!, $after: Int) {
  contextHistory(contextId: $c, afterSequence: $after) { sequence }
}`;

interface Stream {
  /** Every sequence received, in order of arrival. */
  readonly sequences: number[];
  /** Close codes of the connection, in order. */
  readonly closes: number[];
  /** Errors carried by results; none expected. */
  readonly errors: unknown[];
  ended: boolean;
  readonly client: WsClient;
}

const range = (from: number, to: number) =>
  Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);

describe('contextHistory across two replicas sharing PostgreSQL and Redis', () => {
  let dataDir: string;
  let databaseUrl: string;
  let env: Record<string, string>;
  let a: ServerProcess;
  let b: ServerProcess;
  let gqlA: GqlClient;
  let gqlB: GqlClient;
  let token: string;
  let modelId: string;
  let redis: Redis;
  const clients: WsClient[] = [];

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'context-server-e2e-'));
    databaseUrl = await createTestDatabase();
    env = {
      ...replicaEnv(databaseUrl),
      DATA_DIR: dataDir,
      CONTEXT_SWEEP_INTERVAL_MS: '0',
      SHUTDOWN_GRACE_MS: String(SHUTDOWN_GRACE_MS),
    };
    // One after the other: the first start migrates the database and registers the models.
    a = await startServerProcess({ env });
    b = await startServerProcess({ env });
    gqlA = createClient(a.url);
    gqlB = createClient(b.url);
    const login = await gqlA<{ login: { token: string } }>(LOGIN, {
      u: 'admin',
      p: ADMIN_PASSWORD,
    });
    token = login.data!.login.token;
    const models = await gqlB<{ models: { id: string; name: string }[] }>(
      '{ models { id name } }',
      {},
      token,
    );
    modelId = models.data!.models.find((m) => m.name === 'sentiment-afinn')!.id;
    redis = new Redis(inject('redisUrl'));
  }, SLOW);

  afterAll(async () => {
    await Promise.all(clients.map((client) => client.dispose()));
    redis?.disconnect();
    await stopAllServerProcesses();
    if (dataDir) {
      await rm(dataDir, { recursive: true, force: true });
    }
  }, SLOW);

  const watch = (server: ServerProcess, contextId: string, afterSequence: number): Stream => {
    const stream: Stream = {
      sequences: [],
      closes: [],
      errors: [],
      ended: false,
      client: createWsClient({
        url: server.url.replace(/^http/, 'ws'),
        webSocketImpl: WebSocket,
        connectionParams: { authorization: `Bearer ${token}` },
        retryAttempts: 0,
        lazy: true,
        on: {
          closed: (event) => {
            stream.closes.push((event as { code: number }).code);
          },
        },
      }),
    };
    clients.push(stream.client);
    stream.client.subscribe(
      { query: HISTORY, variables: { c: contextId, after: afterSequence } },
      {
        next: (result) => {
          if (result.errors) {
            stream.errors.push(...result.errors);
          }
          if (result.data?.contextHistory) {
            stream.sequences.push((result.data as any).contextHistory.sequence as number);
          }
        },
        error: () => {
          stream.ended = true;
        },
        complete: () => {
          stream.ended = true;
        },
      },
    );
    return stream;
  };

  const createContext = async (gql: GqlClient) => {
    const res = await gql(CREATE_CONTEXT, { input: { model: { modelId } } }, token);
    expect(res.errors).toBeUndefined();
    return res.data!.createContext.id as string;
  };
  const append = async (gql: GqlClient, contextId: string) => {
    const res = await gql(INFER, { m: modelId, input: 'good', c: contextId }, token);
    expect(res.errors).toBeUndefined();
    return res.data!.infer.historyEntry.sequence as number;
  };
  const listening = (channel: string) =>
    vi.waitFor(async () => {
      const [, count] = (await redis.pubsub('NUMSUB', channel)) as [string, number];
      expect(Number(count)).toBeGreaterThan(0);
    }, WAIT);
  const storedSequences = async (contextId: string) => {
    const pg = new PgClient({ connectionString: databaseUrl });
    await pg.connect();
    try {
      const { rows } = await pg.query<{ sequence: number }>(
        'SELECT sequence FROM history_entries WHERE context_id = $1 ORDER BY sequence',
        [contextId],
      );
      return rows.map((r) => Number(r.sequence));
    } finally {
      await pg.end();
    }
  };

  it(
    'delivers on A, in order and once each, the entries appended concurrently on A and B; after A is killed mid-stream, B resumes from the last one seen with nothing lost or repeated',
    async () => {
      const contextId = await createContext(gqlA);
      const onA = watch(a, contextId, 0);
      await listening(Topic.history(contextId));

      const appended = await Promise.all(
        range(1, 50).map((i) => append(i % 2 === 0 ? gqlA : gqlB, contextId)),
      );
      expect(appended.sort((x, y) => x - y)).toEqual(range(1, 50));
      await vi.waitFor(() => expect(onA.sequences.length).toBeGreaterThanOrEqual(50), WAIT);
      expect(onA.sequences).toEqual(range(1, 50));

      // 30 more through B, one at a time; the last 15 only once A is dead.
      let killed!: () => void;
      const aKilled = new Promise<void>((resolve) => {
        killed = resolve;
      });
      const more = (async () => {
        const sequences: number[] = [];
        for (let i = 1; i <= 30; i += 1) {
          if (i === 16) {
            await aKilled;
          }
          sequences.push(await append(gqlB, contextId));
        }
        return sequences;
      })();

      await vi.waitFor(() => expect(onA.sequences.length).toBeGreaterThanOrEqual(55), WAIT);
      await a.stop('SIGKILL');
      killed();
      await vi.waitFor(() => expect(onA.ended).toBe(true), WAIT);
      expect(onA.closes.length).toBeGreaterThan(0);
      expect(onA.closes).not.toContain(1000);

      const lastSeen = onA.sequences.at(-1)!;
      expect(onA.sequences).toEqual(range(1, lastSeen));
      // 66 … 80 are appended only after the kill.
      expect(lastSeen).toBeLessThanOrEqual(65);
      const onB = watch(b, contextId, lastSeen);

      expect(await more).toEqual(range(51, 80));
      await vi.waitFor(() => expect(onB.sequences.at(-1)).toBe(80), WAIT);
      expect(onB.ended).toBe(false);

      expect([...onA.errors, ...onB.errors]).toEqual([]);
      const received = [...onA.sequences, ...onB.sequences];
      const stored = await storedSequences(contextId);
      expect(stored).toEqual(range(1, 80));
      expect(received).toEqual(stored);
    },
    SLOW,
  );

  it(
    'closes its WebSocket clients with 1001 on SIGTERM and exits 0 within SHUTDOWN_GRACE_MS',
    async () => {
      const contextId = await createContext(gqlB);
      const onB = watch(b, contextId, 0);
      await listening(Topic.history(contextId));
      await append(gqlB, contextId);
      await vi.waitFor(() => expect(onB.sequences).toEqual([1]), WAIT);

      const started = Date.now();
      expect(await b.stop('SIGTERM')).toBe(0);
      expect(Date.now() - started).toBeLessThan(SHUTDOWN_GRACE_MS);
      await vi.waitFor(() => expect(onB.closes).toEqual([1001]), WAIT);
      expect(onB.ended).toBe(true);
    },
    SLOW,
  );
});
