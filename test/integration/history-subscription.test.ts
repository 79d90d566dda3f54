import { once } from 'node:events';
import { type Socket } from 'node:net';
import { type GraphQLFormattedError } from 'graphql';
import { createClient as createWsClient, type Client as WsClient } from 'graphql-ws';
import { Redis } from 'ioredis';
import jwt from 'jsonwebtoken';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { WebSocket } from 'ws';
import { Topic } from '../../src/realtime/topics';
import { JWT_SECRET, startTestApp, type TestApp } from '../support/test-app';

/**
 * `contextHistory` over graphql-ws against the real server in-process: replay, live delivery,
 * completion, authorisation, per-connection limits, slow consumers and metrics.
 */

const WAIT = { timeout: 10_000, interval: 10 };
const SLOW = 60_000; // 60 s

const INFER = `mutation($m: ID!, $input: JSON!, $c: ID) {
  infer(modelId: $m, input: $input, contextId: $c) { historyEntry { sequence } }
}`;
const CREATE_CONTEXT = `mutation($input: CreateContextInput!) { createContext(input: $input) { id } }`;
const DELETE_CONTEXT = 'mutation($id: ID!) { deleteContext(id: $id) }';
const DELETE_USER_DATA = 'mutation($id: ID!) { deleteUserData(userId: $id) { contexts user } }';
const SET_DISABLED = 'mutation($id: ID!) { setUserDisabled(id: $id, disabled: true) { id } }';
const SET_ROLE = 'mutation($id: ID!, $role: Role!) { setUserRole(id: $id, role: $role) { role } }';
const HISTORY = `subscription($c: ID!, $after: Int) {
  contextHistory(contextId: $c, afterSequence: $after) { sequence contextId }
}`;
const HISTORY_DEFAULT_AFTER = `subscription($c: ID!) {
  contextHistory(contextId: $c) { sequence }
}`;
const HISTORY_WITH_INPUT = `subscription($c: ID!, $after: Int) {
  contextHistory(contextId: $c, afterSequence: $after) { sequence input }
}`;

type Event =
  | { kind: 'next'; data: Record<string, any> | null | undefined; errors?: readonly unknown[] }
  | { kind: 'error'; error: unknown }
  | { kind: 'complete' };

interface Watch {
  readonly events: Event[];
  /** The sequence of every entry received, in order of arrival. */
  sequences(): number[];
  /** The last event, once the stream has ended (error or complete). */
  ended(): Event | undefined;
  unsubscribe(): void;
}

interface CloseInfo {
  readonly code: number;
  readonly reason: string;
}

const range = (from: number, to: number) =>
  Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);

/** The `extensions.code` of each error an event carries, however graphql-ws delivered it. */
function errorCodes(event: Event | undefined): unknown[] {
  return errorsOf(event).map((e) => e.extensions?.code);
}

function errorsOf(event: Event | undefined): GraphQLFormattedError[] {
  if (event?.kind === 'next') {
    return (event.errors ?? []) as GraphQLFormattedError[];
  }
  if (event?.kind === 'error' && Array.isArray(event.error)) {
    return event.error as GraphQLFormattedError[];
  }
  return [];
}

describe('contextHistory', () => {
  let t: TestApp;
  let modelId: string;
  let redis: Redis;
  let clients: WsClient[] = [];

  beforeAll(async () => {
    t = await startTestApp({ env: { CONTEXT_SWEEP_INTERVAL_MS: '0' } });
    modelId = await sentimentModelId(t);
    redis = new Redis(inject('redisUrl'));
  });
  afterEach(async () => {
    await Promise.all(clients.map((client) => client.dispose()));
    clients = [];
  });
  afterAll(async () => {
    redis?.disconnect();
    await t?.stop();
  });

  const connect = (token?: string, closes: CloseInfo[] = []) => {
    const client = createWsClient({
      url: t.app.url.replace(/^http/, 'ws'),
      webSocketImpl: WebSocket,
      connectionParams: token === undefined ? undefined : { authorization: `Bearer ${token}` },
      retryAttempts: 0,
      lazy: true,
      on: {
        closed: (event) => {
          const { code, reason } = event as { code: number; reason: string };
          closes.push({ code, reason: String(reason) });
        },
      },
    });
    clients.push(client);
    return client;
  };
  const watch = (client: WsClient, contextId: string, afterSequence?: number) =>
    subscribe(client, HISTORY, { c: contextId, after: afterSequence });

  const createContext = async (token = t.adminToken, userId?: string) => {
    const res = await t.gql(
      CREATE_CONTEXT,
      { input: { model: { modelId }, ...(userId ? { userId } : {}) } },
      token,
    );
    expect(res.errors).toBeUndefined();
    return res.data!.createContext.id as string;
  };
  const append = async (contextId: string, token = t.adminToken) => {
    const res = await t.gql(INFER, { m: modelId, input: 'good', c: contextId }, token);
    expect(res.errors).toBeUndefined();
    return res.data!.infer.historyEntry.sequence as number;
  };
  const appendConcurrently = (contextId: string, count: number, token = t.adminToken) =>
    Promise.all(range(1, count).map(() => append(contextId, token)));

  /** The server listens on a channel once a subscription on it is set up. */
  const listening = (channel: string) => waitForSubscribers(redis, channel, (n) => n > 0);
  /** ... and lets go of it when the stream ends. */
  const released = (channel: string) => waitForSubscribers(redis, channel, (n) => n === 0);

  /**
   * Waits for `expected`, then appends one more entry and waits for it too: a late duplicate
   * or a stray entry would arrive before it and show in the comparison.
   */
  const expectExactly = async (w: Watch, contextId: string, expected: number[]) => {
    await vi.waitFor(
      () => expect(w.sequences().length).toBeGreaterThanOrEqual(expected.length),
      WAIT,
    );
    const sentinel = await append(contextId);
    await vi.waitFor(() => expect(w.sequences()).toContain(sentinel), WAIT);
    expect(w.sequences()).toEqual([...expected, sentinel]);
  };

  describe('replay and live delivery', () => {
    it('replays the stored entries after afterSequence, then streams concurrent appends in order, each once', async () => {
      const contextId = await createContext();
      for (let i = 0; i < 5; i += 1) {
        await append(contextId);
      }

      const w = watch(connect(t.adminToken), contextId, 2);
      await vi.waitFor(() => expect(w.sequences()).toEqual([3, 4, 5]), WAIT);

      expect((await appendConcurrently(contextId, 5)).sort((a, b) => a - b)).toEqual(range(6, 10));
      await expectExactly(w, contextId, range(3, 10));
      expect(w.events.every((e) => e.kind === 'next' && !e.errors)).toBe(true);
      expect(new Set(w.events.map((e) => (e as any).data.contextHistory.contextId))).toEqual(
        new Set([contextId]),
      );
    });

    it(
      'gives exactly the entries after afterSequence, without gap or duplicate, when it subscribes while 20 are being appended',
      async () => {
        for (const afterSequence of [5, 10, 15]) {
          const contextId = await createContext();
          const w = watch(connect(t.adminToken), contextId, afterSequence);
          const appended = await appendConcurrently(contextId, 20);

          expect(appended.sort((a, b) => a - b)).toEqual(range(1, 20));
          await expectExactly(w, contextId, range(afterSequence + 1, 20));
        }
      },
      SLOW,
    );

    it('replays everything when afterSequence is left out', async () => {
      const contextId = await createContext();
      for (let i = 0; i < 3; i += 1) {
        await append(contextId);
      }

      const w = subscribe(connect(t.adminToken), HISTORY_DEFAULT_AFTER, { c: contextId });
      await vi.waitFor(() => expect(w.sequences()).toEqual([1, 2, 3]), WAIT);
      await expectExactly(w, contextId, [1, 2, 3]);
    });

    it('sends only new entries when afterSequence is beyond the last one stored', async () => {
      const contextId = await createContext();
      for (let i = 0; i < 3; i += 1) {
        await append(contextId);
      }

      const w = watch(connect(t.adminToken), contextId, 10);
      await listening(Topic.history(contextId));
      for (let i = 0; i < 9; i += 1) {
        await append(contextId);
      }
      await expectExactly(w, contextId, [11, 12]);
    });

    it('refuses a negative afterSequence as BAD_USER_INPUT', async () => {
      const contextId = await createContext();
      const w = watch(connect(t.adminToken), contextId, -1);

      await vi.waitFor(() => expect(w.ended()).toBeDefined(), WAIT);
      expect(errorCodes(w.events[0])).toEqual(['BAD_USER_INPUT']);
      expect(w.sequences()).toEqual([]);
    });
  });

  describe('completion', () => {
    it('completes the stream when the context is deleted', async () => {
      const contextId = await createContext();
      const w = watch(connect(t.adminToken), contextId);
      await listening(Topic.history(contextId));
      await append(contextId);
      await vi.waitFor(() => expect(w.sequences()).toEqual([1]), WAIT);

      const deleted = await t.gql(DELETE_CONTEXT, { id: contextId }, t.adminToken);
      expect(deleted.data).toEqual({ deleteContext: true });

      await vi.waitFor(() => expect(w.ended()).toEqual({ kind: 'complete' }), WAIT);
      await released(Topic.history(contextId));
    });

    it('completes the streams on a user’s context when the user’s data is erased', async () => {
      const owner = await t.createUser('history-erased-owner');
      const contextId = await createContext(owner.token);
      const byAdmin = watch(connect(t.adminToken), contextId);
      const byOwner = watch(connect(owner.token), contextId);
      await append(contextId, owner.token);
      await vi.waitFor(() => expect(byAdmin.sequences()).toEqual([1]), WAIT);
      await vi.waitFor(() => expect(byOwner.sequences()).toEqual([1]), WAIT);

      const erased = await t.gql(DELETE_USER_DATA, { id: owner.id }, t.adminToken);
      expect(erased.errors).toBeUndefined();
      expect(erased.data!.deleteUserData).toEqual({ contexts: 1, user: true });

      await vi.waitFor(() => expect(byAdmin.ended()).toEqual({ kind: 'complete' }), WAIT);
      await vi.waitFor(() => expect(byOwner.ended()).toEqual({ kind: 'complete' }), WAIT);
      await released(Topic.history(contextId));
    });
  });

  describe('authorisation', () => {
    it('closes a connection whose connection_init carries a garbage token with 4401', async () => {
      const closes: CloseInfo[] = [];
      const w = watch(connect('garbage', closes), '00000000-0000-0000-0000-000000000000');

      await vi.waitFor(() => expect(closes).toHaveLength(1), WAIT);
      expect(closes[0]!.code).toBe(4401);
      expect(w.sequences()).toEqual([]);
    });

    it('answers a subscription without a token as UNAUTHENTICATED', async () => {
      const contextId = await createContext();
      const w = watch(connect(), contextId);

      await vi.waitFor(() => expect(w.ended()).toBeDefined(), WAIT);
      expect(errorCodes(w.events[0])).toEqual(['UNAUTHENTICATED']);
      expect(w.sequences()).toEqual([]);
    });

    it('refuses a USER another user’s context as FORBIDDEN', async () => {
      const owner = await t.createUser('history-owner');
      const stranger = await t.createUser('history-stranger');
      const contextId = await createContext(owner.token);
      await append(contextId, owner.token);

      const w = watch(connect(stranger.token), contextId);
      await vi.waitFor(() => expect(w.ended()).toBeDefined(), WAIT);
      expect(errorCodes(w.events[0])).toEqual(['FORBIDDEN']);
      expect(w.sequences()).toEqual([]);
    });

    it('lets an admin watch any user’s context', async () => {
      const owner = await t.createUser('history-watched-owner');
      const contextId = await createContext(owner.token);
      await append(contextId, owner.token);

      const w = watch(connect(t.adminToken), contextId);
      await vi.waitFor(() => expect(w.sequences()).toEqual([1]), WAIT);
      await append(contextId, owner.token);
      await expectExactly(w, contextId, [1, 2]);
    });

    it('ends the stream of a user who is disabled while subscribed with UNAUTHENTICATED', async () => {
      const user = await t.createUser('history-disabled');
      const contextId = await createContext(user.token);
      const w = watch(connect(user.token), contextId);
      await listening(Topic.user(user.id));

      const res = await t.gql(SET_DISABLED, { id: user.id }, t.adminToken);
      expect(res.errors).toBeUndefined();

      await vi.waitFor(() => expect(w.ended()).toBeDefined(), WAIT);
      expect(w.events).toHaveLength(1);
      expect(errorCodes(w.ended())).toEqual(['UNAUTHENTICATED']);
      await released(Topic.history(contextId));
    });

    it('ends with FORBIDDEN the stream of an admin watching another user’s context when demoted to USER', async () => {
      const owner = await t.createUser('history-demotion-owner');
      const watcher = await t.createUser('history-demoted-admin', 'ADMIN');
      const contextId = await createContext(owner.token);
      const w = watch(connect(watcher.token), contextId);
      await listening(Topic.user(watcher.id));
      await append(contextId, owner.token);
      await vi.waitFor(() => expect(w.sequences()).toEqual([1]), WAIT);

      const res = await t.gql(SET_ROLE, { id: watcher.id, role: 'USER' }, t.adminToken);
      expect(res.data).toEqual({ setUserRole: { role: 'USER' } });

      await vi.waitFor(() => expect(w.ended()).toBeDefined(), WAIT);
      expect(errorCodes(w.ended())).toEqual(['FORBIDDEN']);
      await released(Topic.history(contextId));
    });

    it('keeps the stream of an admin who is demoted while watching their own context', async () => {
      const watcher = await t.createUser('history-demoted-own', 'ADMIN');
      const contextId = await createContext(watcher.token);
      const w = watch(connect(watcher.token), contextId);
      await listening(Topic.user(watcher.id));

      const res = await t.gql(SET_ROLE, { id: watcher.id, role: 'USER' }, t.adminToken);
      expect(res.data).toEqual({ setUserRole: { role: 'USER' } });
      await append(contextId, watcher.token);

      await expectExactly(w, contextId, [1]);
      expect(w.ended()).toBeUndefined();
    });

    it('closes the connection with 4401 “Token expired” when its token expires', async () => {
      const user = await t.createUser('history-expiring');
      const contextId = await createContext(user.token);
      const now = Math.floor(Date.now() / 1000);
      const token = jwt.sign({ sub: user.id, role: 'USER', iat: now, exp: now + 3 }, JWT_SECRET, {
        algorithm: 'HS256',
      });
      const closes: CloseInfo[] = [];
      const w = watch(connect(token, closes), contextId);
      await listening(Topic.history(contextId));
      await append(contextId, user.token);
      await vi.waitFor(() => expect(w.sequences()).toEqual([1]), WAIT);
      expect(closes).toEqual([]);

      await vi.waitFor(() => expect(closes).toHaveLength(1), { timeout: 10_000, interval: 50 });
      expect(closes[0]!.code).toBe(4401);
      expect(closes[0]!.reason).toContain('Token expired');
      await released(Topic.history(contextId));
    });
  });

  describe('metrics', () => {
    it('counts delivered messages and open connections', async () => {
      const gauge = async () => (await t.app.metrics.wsConnections.get()).values[0]?.value ?? 0;
      const delivered = async () =>
        (await t.app.metrics.subscriptionMessages.get()).values[0]?.value ?? 0;
      await vi.waitFor(async () => expect(await gauge()).toBe(0), WAIT);
      const before = await delivered();

      const client = connect(t.adminToken);
      const contextId = await createContext();
      const w = watch(client, contextId);
      await listening(Topic.history(contextId));
      await appendConcurrently(contextId, 3);
      await vi.waitFor(() => expect(w.sequences()).toEqual([1, 2, 3]), WAIT);
      expect(await gauge()).toBe(1);

      const text = await t.app.metrics.registry.getSingleMetricAsString(
        'graphql_subscription_messages_total',
      );
      const total = Number(/^graphql_subscription_messages_total (\d+)/m.exec(text)?.[1]);
      expect(total).toBeGreaterThan(0);
      expect(total - before).toBeGreaterThanOrEqual(3);
      expect(await delivered()).toBe(total);

      await client.dispose();
      await vi.waitFor(async () => expect(await gauge()).toBe(0), WAIT);
    });
  });
});

describe('contextHistory limits per connection and per user', () => {
  let t: TestApp;
  let modelId: string;
  let redis: Redis;
  const clients: WsClient[] = [];

  beforeAll(async () => {
    t = await startTestApp({
      env: {
        CONTEXT_SWEEP_INTERVAL_MS: '0',
        WS_MAX_SUBSCRIPTIONS_PER_CONNECTION: '2',
        WS_MAX_CONNECTIONS_PER_USER: '1',
      },
    });
    modelId = await sentimentModelId(t);
    redis = new Redis(inject('redisUrl'));
  });
  afterAll(async () => {
    await Promise.all(clients.map((client) => client.dispose()));
    redis?.disconnect();
    await t?.stop();
  });

  const connect = (token: string, closes: CloseInfo[] = []) => {
    const client = createWsClient({
      url: t.app.url.replace(/^http/, 'ws'),
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${token}` },
      retryAttempts: 0,
      lazy: true,
      on: {
        closed: (event) => {
          const { code, reason } = event as { code: number; reason: string };
          closes.push({ code, reason: String(reason) });
        },
      },
    });
    clients.push(client);
    return client;
  };
  const createContext = async (token: string) => {
    const res = await t.gql(CREATE_CONTEXT, { input: { model: { modelId } } }, token);
    expect(res.errors).toBeUndefined();
    return res.data!.createContext.id as string;
  };
  const append = async (contextId: string, token: string) => {
    const res = await t.gql(INFER, { m: modelId, input: 'good', c: contextId }, token);
    expect(res.errors).toBeUndefined();
  };

  it('refuses a third subscription on one connection as LIMIT_EXCEEDED and keeps the first two', async () => {
    const user = await t.createUser('limit-subscriptions');
    const ids = [
      await createContext(user.token),
      await createContext(user.token),
      await createContext(user.token),
    ];
    const client = connect(user.token);
    const first = subscribe(client, HISTORY, { c: ids[0] });
    const second = subscribe(client, HISTORY, { c: ids[1] });
    await waitForSubscribers(redis, Topic.history(ids[0]!), (n) => n > 0);
    await waitForSubscribers(redis, Topic.history(ids[1]!), (n) => n > 0);

    const third = subscribe(client, HISTORY, { c: ids[2] });
    await vi.waitFor(() => expect(third.ended()).toBeDefined(), WAIT);
    expect(errorCodes(third.ended())).toEqual(['LIMIT_EXCEEDED']);

    await append(ids[0]!, user.token);
    await append(ids[1]!, user.token);
    await vi.waitFor(() => expect(first.sequences()).toEqual([1]), WAIT);
    await vi.waitFor(() => expect(second.sequences()).toEqual([1]), WAIT);
    expect(first.ended()).toBeUndefined();
    expect(second.ended()).toBeUndefined();
  });

  it('closes a second connection of the same user with 4029 and keeps the first', async () => {
    const user = await t.createUser('limit-connections');
    const contextId = await createContext(user.token);
    const firstCloses: CloseInfo[] = [];
    const first = subscribe(connect(user.token, firstCloses), HISTORY, { c: contextId });
    await waitForSubscribers(redis, Topic.history(contextId), (n) => n > 0);

    const secondCloses: CloseInfo[] = [];
    const second = subscribe(connect(user.token, secondCloses), HISTORY, { c: contextId });
    await vi.waitFor(() => expect(secondCloses).toHaveLength(1), WAIT);
    expect(secondCloses[0]!.code).toBe(4029);
    expect(second.sequences()).toEqual([]);

    await append(contextId, user.token);
    await vi.waitFor(() => expect(first.sequences()).toEqual([1]), WAIT);
    expect(firstCloses).toEqual([]);
  });
});

describe('contextHistory for a subscriber that stops reading', () => {
  const BUFFER = 3;
  const ENTRIES = 100;
  // 100 entries of 200 KB: about 20 MB, several times what the kernel buffers of a localhost
  // connection hold (about 4 MB here), so the server's sends stall and its buffer overflows.
  const INPUT = `good ${'x'.repeat(200_000)}`;
  let t: TestApp;
  let modelId: string;
  let redis: Redis;

  beforeAll(async () => {
    t = await startTestApp({
      env: {
        CONTEXT_SWEEP_INTERVAL_MS: '0',
        SUBSCRIPTION_BUFFER: String(BUFFER),
        MAX_INPUT_CHARS: '300000',
        HISTORY_LIMIT: '1000',
      },
    });
    modelId = await sentimentModelId(t);
    redis = new Redis(inject('redisUrl'));
  });
  afterAll(async () => {
    redis?.disconnect();
    await t?.stop();
  });

  it(
    'closes the stream with SLOW_CONSUMER and lastSequence, and a resubscription from there gets the rest without gap or duplicate',
    async () => {
      const created = await t.gql(CREATE_CONTEXT, { input: { model: { modelId } } }, t.adminToken);
      const contextId = created.data!.createContext.id as string;
      const client = await openRawClient(t.app.url.replace(/^http/, 'ws'), t.adminToken);
      try {
        client.send({
          id: 'first',
          type: 'subscribe',
          payload: { query: HISTORY_WITH_INPUT, variables: { c: contextId, after: 0 } },
        });
        await waitForSubscribers(redis, Topic.history(contextId), (n) => n > 0);

        client.pause();
        for (let i = 0; i < ENTRIES; i += 10) {
          await Promise.all(
            range(1, 10).map(async () => {
              const res = await t.gql(
                INFER,
                { m: modelId, input: INPUT, c: contextId },
                t.adminToken,
              );
              expect(res.errors).toBeUndefined();
            }),
          );
        }
        client.resume();

        const failure = await vi.waitFor(() => {
          const frame = client.frames.find((f) => f.id === 'first' && f.type !== 'next');
          expect(frame).toBeDefined();
          return frame!;
        }, WAIT);
        expect(failure.type).toBe('error');
        const [error] = failure.payload as GraphQLFormattedError[];
        expect(error?.extensions).toMatchObject({
          code: 'SERVICE_UNAVAILABLE',
          reason: 'SLOW_CONSUMER',
        });
        const lastSequence = error!.extensions!.lastSequence as number;
        expect(Number.isInteger(lastSequence)).toBe(true);
        expect(lastSequence).toBeLessThan(ENTRIES);
        const before = client.sequences('first');
        expect(before).toEqual(range(1, lastSequence));
        expect(
          client.frames
            .filter((f) => f.id === 'first' && f.type === 'next')
            .every((f) => f.payload.data.contextHistory.input === INPUT),
        ).toBe(true);

        client.send({
          id: 'again',
          type: 'subscribe',
          payload: { query: HISTORY_WITH_INPUT, variables: { c: contextId, after: lastSequence } },
        });
        await vi.waitFor(() => expect(client.sequences('again').at(-1)).toBe(ENTRIES), WAIT);
        expect(client.sequences('again')).toEqual(range(lastSequence + 1, ENTRIES));
        expect(client.frames.filter((f) => f.id === 'again' && f.type !== 'next')).toEqual([]);
      } finally {
        client.close();
      }
    },
    SLOW,
  );
});

// ---------------------------------------------------------------------------------- helpers

async function sentimentModelId(t: TestApp): Promise<string> {
  const res = await t.gql('{ models { id name } }', {}, t.adminToken);
  const model = (res.data!.models as { id: string; name: string }[]).find(
    (m) => m.name === 'sentiment-afinn',
  );
  if (!model) {
    throw new Error(`the shipped model sentiment-afinn is not registered: ${JSON.stringify(res)}`);
  }
  return model.id;
}

function subscribe(client: WsClient, query: string, variables: Record<string, unknown>): Watch {
  const events: Event[] = [];
  let end: Event | undefined;
  const unsubscribe = client.subscribe(
    { query, variables },
    {
      next: (result) => {
        events.push({ kind: 'next', data: result.data, errors: result.errors });
      },
      error: (error) => {
        end = { kind: 'error', error };
        events.push(end);
      },
      complete: () => {
        end = { kind: 'complete' };
        events.push(end);
      },
    },
  );
  return {
    events,
    sequences: () =>
      events.flatMap((e) =>
        e.kind === 'next' && e.data?.contextHistory
          ? [e.data.contextHistory.sequence as number]
          : [],
      ),
    // graphql-ws completes after a result that carries only errors; that result is the verdict.
    ended: () => {
      const last = events.at(-1);
      if (end?.kind === 'complete' && last === end && events.length >= 2) {
        const before = events.at(-2)!;
        if (before.kind === 'next' && before.errors?.length && !before.data) {
          return before;
        }
      }
      return end;
    },
    unsubscribe,
  };
}

async function waitForSubscribers(
  redis: Redis,
  channel: string,
  accept: (subscribers: number) => boolean,
): Promise<void> {
  await vi.waitFor(async () => {
    const [, count] = (await redis.pubsub('NUMSUB', channel)) as [string, number];
    expect(accept(Number(count))).toBe(true);
  }, WAIT);
}

interface Frame {
  readonly id?: string;
  readonly type: string;
  readonly payload?: any;
}

/**
 * A graphql-transport-ws client on a bare `ws` socket, so a test can stop reading from the
 * TCP connection (graphql-ws's own client gives no handle on it).
 */
async function openRawClient(url: string, token: string) {
  const socket = new WebSocket(url, 'graphql-transport-ws');
  const frames: Frame[] = [];
  socket.on('message', (data) => {
    frames.push(JSON.parse(String(data)) as Frame);
  });
  await once(socket, 'open');
  const send = (frame: Frame) => socket.send(JSON.stringify(frame));
  send({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } });
  await vi.waitFor(() => expect(frames.map((f) => f.type)).toContain('connection_ack'), WAIT);
  const tcp = (socket as unknown as { _socket: Socket })._socket;
  return {
    frames,
    send,
    sequences: (id: string) =>
      frames
        .filter((f) => f.id === id && f.type === 'next')
        .map((f) => f.payload.data.contextHistory.sequence as number),
    /** Stops reading: the server's writes back up once the kernel buffers are full. */
    pause: () => tcp.pause(),
    resume: () => tcp.resume(),
    close: () => socket.terminate(),
  };
}
