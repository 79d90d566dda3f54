import { randomUUID } from 'node:crypto';
import { createClient as createWsClient, type Client as WsClient } from 'graphql-ws';
import { Redis } from 'ioredis';
import { type DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { WebSocket } from 'ws';
import { Topic } from '../../src/realtime/topics';
import { FieldEncryption, parseEncryptionKeys } from '../../src/security/field-encryption';
import { codes } from '../support/graphql-client';
import { insertModel } from '../support/models';
import { ENCRYPTION_KEYS, startTestApp, type TestApp } from '../support/test-app';

/** No background sweep: the tests decide when expired rows go. */
const NO_SWEEPER = { CONTEXT_SWEEP_INTERVAL_MS: '0' };
const HOUR_MS = 3_600_000;
const MINUTE_MS = 60_000;

const CONTEXT_FIELDS = `
  id schemaVersion version expiresAt
  user { preferences demographics }
  environment { timestamp deploymentEnvironment serverLoad availableResources }
  model { parameters constraints }
  data { source timestamp qualityMetrics }
  customAttributes`;
const CREATE = `mutation($input: CreateContextInput!) {
  createContext(input: $input) { ${CONTEXT_FIELDS} }
}`;
const UPDATE = `mutation($id: ID!, $patch: UpdateContextInput!) {
  updateContext(id: $id, patch: $patch) { ${CONTEXT_FIELDS} }
}`;
const GET = `query($id: ID!) { context(id: $id) { ${CONTEXT_FIELDS} } }`;
const GET_WITH_HISTORY = `query($id: ID!) {
  context(id: $id) {
    schemaVersion
    history(first: 10) { totalCount edges { node { sequence input output createdAt } } }
  }
}`;
const LIST_IDS = '{ contexts(first: 100) { edges { node { id } } } }';
const DELETE = 'mutation($id: ID!) { deleteContext(id: $id) }';

/** What the service authenticates each ciphertext column with (src/domains/context/context.service.ts). */
const userDataAad = (id: string) => `contexts.user_data:${id}`;
const customAttributesAad = (id: string) => `contexts.custom_attributes:${id}`;

const appEncryption = () => new FieldEncryption(parseEncryptionKeys(ENCRYPTION_KEYS));

interface StoredContext {
  readonly id: string;
  readonly userId: string;
  readonly modelId: string;
  readonly schemaVersion: number;
  readonly userData: unknown;
  readonly environment: unknown;
  readonly modelData: unknown;
  readonly data: unknown;
  readonly customAttributes: unknown;
}

/** Writes a contexts row as an older release (or another replica) would have, bypassing the API. */
async function insertContextRow(
  dataSource: DataSource,
  encryption: FieldEncryption,
  row: StoredContext,
): Promise<void> {
  await dataSource.query(
    `INSERT INTO contexts (id, user_id, model_id, schema_version, user_data, environment,
       model_data, data, custom_attributes, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now() + interval '1 day')`,
    [
      row.id,
      row.userId,
      row.modelId,
      row.schemaVersion,
      encryption.encryptJson(row.userData, userDataAad(row.id)),
      JSON.stringify(row.environment),
      JSON.stringify(row.modelData),
      JSON.stringify(row.data),
      encryption.encryptJson(row.customAttributes, customAttributesAad(row.id)),
    ],
  );
}

async function rawRow(dataSource: DataSource, id: string): Promise<Record<string, any>> {
  const [row] = await dataSource.query('SELECT * FROM contexts WHERE id = $1', [id]);
  return row as Record<string, any>;
}

const meId = async (t: TestApp, token: string) =>
  (await t.gql('{ me { id } }', {}, token)).data!.me.id as string;

describe('contexts at rest', () => {
  let t: TestApp;
  let modelId: string;
  let adminId: string;
  let redis: Redis;

  beforeAll(async () => {
    t = await startTestApp({ env: NO_SWEEPER });
    modelId = await insertModel(t.app.dataSource);
    adminId = await meId(t, t.adminToken);
    redis = new Redis(inject('redisUrl'));
  });
  afterAll(async () => {
    redis?.disconnect();
    await t?.stop();
  });

  const create = async (input: Record<string, unknown> = {}, token = t.adminToken) => {
    const res = await t.gql(CREATE, { input: { model: { modelId }, ...input } }, token);
    expect(res.errors).toBeUndefined();
    return res.data!.createContext as Record<string, any>;
  };

  describe('encryption', () => {
    it('stores the user section and custom attributes only as ciphertext, and returns them decrypted', async () => {
      const secrets = ['vermilion-42', 'Ruritania-7731', 'loyalty-platinum-9f3e'];
      const created = await create({
        user: {
          preferences: { favouriteColour: 'vermilion-42' },
          demographics: { homeland: 'Ruritania-7731' },
        },
        customAttributes: { tier: 'loyalty-platinum-9f3e' },
      });

      const [row] = await t.app.dataSource.query(
        'SELECT user_data, custom_attributes, environment::text, data::text FROM contexts WHERE id = $1',
        [created.id],
      );
      expect(Buffer.isBuffer(row.user_data)).toBe(true);
      expect(Buffer.isBuffer(row.custom_attributes)).toBe(true);
      for (const secret of secrets) {
        const secretHex = Buffer.from(secret, 'utf8').toString('hex');
        for (const blob of [row.user_data as Buffer, row.custom_attributes as Buffer]) {
          expect(blob.toString('utf8')).not.toContain(secret);
          expect(blob.toString('hex')).not.toContain(secretHex);
        }
        expect(row.environment).not.toContain(secret);
        expect(row.data).not.toContain(secret);
      }

      const read = await t.gql(GET, { id: created.id }, t.adminToken);
      expect(read.data!.context.user).toEqual({
        preferences: { favouriteColour: 'vermilion-42' },
        demographics: { homeland: 'Ruritania-7731' },
      });
      expect(read.data!.context.customAttributes).toEqual({ tier: 'loyalty-platinum-9f3e' });
    });

    it('reads a context encrypted under the old key, and re-encrypts it under the current key when it is written', async () => {
      const oldKeyOnly = new FieldEncryption(
        parseEncryptionKeys(`test1:${Buffer.alloc(32, 1).toString('base64')}`),
      );
      const id = randomUUID();
      await insertContextRow(t.app.dataSource, oldKeyOnly, {
        id,
        userId: adminId,
        modelId,
        schemaVersion: 1,
        userData: { preferences: { language: 'tlh' }, demographics: null },
        environment: {
          timestamp: '2025-01-02T03:04:05.000Z',
          deploymentEnvironment: 'PRODUCTION',
          serverLoad: 0.2,
          availableResources: {},
        },
        modelData: { parameters: {}, constraints: {} },
        data: { source: 's', timestamp: null, qualityMetrics: {} },
        customAttributes: { cohort: 'rotated-before' },
      });
      const before = await rawRow(t.app.dataSource, id);
      expect(oldKeyOnly.keyIdOf(before.user_data)).toBe('test1');

      const read = await t.gql(GET, { id }, t.adminToken);
      expect(read.errors).toBeUndefined();
      expect(read.data!.context).toMatchObject({
        schemaVersion: 1,
        user: { preferences: { language: 'tlh' }, demographics: null },
        environment: { deploymentEnvironment: 'PRODUCTION', serverLoad: 0.2 },
        data: { source: 's', timestamp: null },
        customAttributes: { cohort: 'rotated-before' },
      });

      const updated = await t.gql(
        UPDATE,
        { id, patch: { customAttributes: { cohort: 'rotated-after' } } },
        t.adminToken,
      );
      expect(updated.errors).toBeUndefined();
      expect(updated.data!.updateContext).toMatchObject({
        version: 2,
        user: { preferences: { language: 'tlh' } },
        customAttributes: { cohort: 'rotated-after' },
      });
      const after = await rawRow(t.app.dataSource, id);
      expect(oldKeyOnly.keyIdOf(after.user_data)).toBe('test2');
      expect(oldKeyOnly.keyIdOf(after.custom_attributes)).toBe('test2');
    });
  });

  describe('schema version 0', () => {
    const turns = [
      { timestamp: '2024-05-01T10:00:00.000Z', input: { prompt: 'hello' }, output: { text: 'hi' } },
      {
        timestamp: '2024-05-01T10:01:00.000Z',
        input: { prompt: 'weather?' },
        output: { text: 'sunny' },
      },
      { timestamp: '2024-05-01T10:02:00.000Z', input: { prompt: 'bye' }, output: { text: 'ciao' } },
    ];

    /** A row in the guide's document shape, as the first release stored it. */
    const insertVersion0 = async () => {
      const id = randomUUID();
      await insertContextRow(t.app.dataSource, appEncryption(), {
        id,
        userId: adminId,
        modelId,
        schemaVersion: 0,
        userData: {
          user_id: adminId,
          preferences: { tone: 'formal' },
          demographics: { ageBand: '30-39' },
          session_history: turns,
        },
        environment: {
          timestamp: '2024-05-01T09:59:00.000Z',
          deployment_environment: 'production',
          server_load: 0.35,
          available_resources: { gpus: 2 },
        },
        modelData: {
          model_id: modelId,
          model_version: '1',
          parameters: { temperature: 0.3 },
          constraints: { maxTokens: 64 },
        },
        data: {
          data_source: 'crm-export',
          data_timestamp: '2024-04-30T00:00:00.000Z',
          data_quality_metrics: { completeness: 0.97 },
        },
        customAttributes: {},
      });
      return id;
    };

    it('reads a version-0 row in today’s shape, moves its session history into history entries, and rewrites the row', async () => {
      const id = await insertVersion0();

      const read = await t.gql(GET, { id }, t.adminToken);
      expect(read.errors).toBeUndefined();
      expect(read.data!.context).toMatchObject({
        schemaVersion: 1,
        user: { preferences: { tone: 'formal' }, demographics: { ageBand: '30-39' } },
        environment: {
          timestamp: '2024-05-01T09:59:00.000Z',
          deploymentEnvironment: 'PRODUCTION',
          serverLoad: 0.35,
          availableResources: { gpus: 2 },
        },
        model: { parameters: { temperature: 0.3 }, constraints: { maxTokens: 64 } },
        data: {
          source: 'crm-export',
          timestamp: '2024-04-30T00:00:00.000Z',
          qualityMetrics: { completeness: 0.97 },
        },
      });

      const history = await t.gql(GET_WITH_HISTORY, { id }, t.adminToken);
      expect(history.errors).toBeUndefined();
      expect(history.data!.context.history.edges.map((e: any) => e.node)).toEqual(
        turns.map((turn, index) => ({
          sequence: index + 1,
          input: turn.input,
          output: turn.output,
          createdAt: turn.timestamp,
        })),
      );

      const row = await rawRow(t.app.dataSource, id);
      expect(row.schema_version).toBe(1);
      expect(row.last_sequence).toBe(3);
      const user = appEncryption().decryptJson<Record<string, unknown>>(
        row.user_data,
        userDataAad(id),
      );
      expect(user).not.toHaveProperty('session_history');
    });

    it('does not duplicate the moved history when the row is read again', async () => {
      const id = await insertVersion0();
      await t.gql(GET, { id }, t.adminToken);

      const again = await t.gql(GET_WITH_HISTORY, { id }, t.adminToken);
      expect(again.data!.context.history.totalCount).toBe(3);
      expect(again.data!.context.history.edges.map((e: any) => e.node.sequence)).toEqual([1, 2, 3]);
      const [{ count }] = await t.app.dataSource.query(
        'SELECT count(*)::int AS count FROM history_entries WHERE context_id = $1',
        [id],
      );
      expect(count).toBe(3);
    });

    it('upgrades a version-0 row once when several readers reach it at the same time', async () => {
      const id = await insertVersion0();

      const reads = await Promise.all(
        Array.from({ length: 5 }, () => t.gql(GET, { id }, t.adminToken)),
      );
      for (const read of reads) {
        expect(read.errors).toBeUndefined();
        expect(read.data!.context.schemaVersion).toBe(1);
      }
      const [{ count }] = await t.app.dataSource.query(
        'SELECT count(*)::int AS count FROM history_entries WHERE context_id = $1',
        [id],
      );
      expect(count).toBe(3);
    });
  });

  describe('expiry', () => {
    /**
     * Moves expires_at into the past. Time passing would also end the cached copy (its TTL
     * stops at expires_at); SQL cannot move the clock, so the copy is dropped here as well.
     */
    const expire = async (id: string) => {
      await t.app.dataSource.query(
        `UPDATE contexts SET expires_at = now() - interval '1 minute' WHERE id = $1`,
        [id],
      );
      await redis.del(`cs:ctx:${id}`);
    };

    it('hides an expired context at once from context and contexts, and refuses to update it', async () => {
      const live = await create();
      const expired = await create();
      await expire(expired.id);

      expect((await t.gql(GET, { id: expired.id }, t.adminToken)).data).toEqual({
        context: null,
      });
      const listed = (await t.gql(LIST_IDS, {}, t.adminToken)).data!.contexts.edges.map(
        (e: any) => e.node.id,
      );
      expect(listed).toContain(live.id);
      expect(listed).not.toContain(expired.id);
      const update = await t.gql(
        UPDATE,
        { id: expired.id, patch: { customAttributes: { revived: true } } },
        t.adminToken,
      );
      expect(codes(update)).toEqual(['NOT_FOUND']);
    });

    it('sets expiresAt to about now plus ttlSeconds', async () => {
      const created = await create({ ttlSeconds: 3600 });
      expect(Math.abs(Date.parse(created.expiresAt) - (Date.now() + HOUR_MS))).toBeLessThan(
        MINUTE_MS,
      );
    });

    it('moves expiresAt forward on every update, keeping the context’s ttlSeconds', async () => {
      const created = await create({ ttlSeconds: 3600 });
      await new Promise((resolve) => setTimeout(resolve, 20));

      const res = await t.gql(
        UPDATE,
        { id: created.id, patch: { customAttributes: { touched: true } } },
        t.adminToken,
      );
      expect(res.errors).toBeUndefined();
      const expiresAt = Date.parse(res.data!.updateContext.expiresAt);
      expect(expiresAt).toBeGreaterThan(Date.parse(created.expiresAt));
      expect(Math.abs(expiresAt - (Date.now() + HOUR_MS))).toBeLessThan(MINUTE_MS);
    });

    it('refuses a ttlSeconds of 5 as BAD_USER_INPUT', async () => {
      const res = await t.gql(
        CREATE,
        { input: { model: { modelId }, ttlSeconds: 5 } },
        t.adminToken,
      );
      expect(codes(res)).toEqual(['BAD_USER_INPUT']);
    });
  });

  describe('the contextUpdated subscription', () => {
    type Event =
      | { kind: 'next'; data: any; errors: readonly any[] | undefined }
      | { kind: 'error'; error: unknown }
      | { kind: 'complete' };
    const clients: WsClient[] = [];
    const SUBSCRIBE = `subscription($id: ID!) {
      contextUpdated(contextId: $id) { id version customAttributes }
    }`;

    afterAll(async () => {
      await Promise.all(clients.map((client) => client.dispose()));
    });

    const subscribe = (token: string, contextId: string) => {
      const client = createWsClient({
        url: t.app.url.replace(/^http/, 'ws'),
        webSocketImpl: WebSocket,
        connectionParams: { authorization: `Bearer ${token}` },
        retryAttempts: 0,
        lazy: true,
      });
      clients.push(client);
      const events: Event[] = [];
      client.subscribe(
        { query: SUBSCRIBE, variables: { id: contextId } },
        {
          next: (result) => events.push({ kind: 'next', data: result.data, errors: result.errors }),
          error: (error) => events.push({ kind: 'error', error }),
          complete: () => events.push({ kind: 'complete' }),
        },
      );
      return events;
    };

    /** The server listens on the context's Redis channel once the subscription is set up. */
    const listening = async (contextId: string) => {
      await vi.waitFor(
        async () => {
          const [, count] = (await redis.pubsub('NUMSUB', Topic.context(contextId))) as [
            string,
            number,
          ];
          expect(Number(count)).toBeGreaterThan(0);
        },
        { timeout: 5_000, interval: 20 },
      );
    };

    const errorCodes = (event: Event | undefined): unknown[] => {
      if (event?.kind === 'next') {
        return (event.errors ?? []).map((e) => e.extensions?.code);
      }
      if (event?.kind === 'error' && Array.isArray(event.error)) {
        return event.error.map((e: any) => e.extensions?.code);
      }
      return [];
    };

    it('sends the owner each new version after an update, and completes when the context is deleted', async () => {
      const owner = await t.createUser('subscriber-owner');
      const created = await create({}, owner.token);
      const events = subscribe(owner.token, created.id);
      await listening(created.id);

      for (const round of [1, 2]) {
        const res = await t.gql(
          UPDATE,
          { id: created.id, patch: { customAttributes: { round } } },
          owner.token,
        );
        expect(res.errors).toBeUndefined();
      }
      await vi.waitFor(() => expect(events).toHaveLength(2), { timeout: 5_000 });
      expect(events).toEqual([
        {
          kind: 'next',
          data: {
            contextUpdated: { id: created.id, version: 2, customAttributes: { round: 1 } },
          },
          errors: undefined,
        },
        {
          kind: 'next',
          data: {
            contextUpdated: { id: created.id, version: 3, customAttributes: { round: 2 } },
          },
          errors: undefined,
        },
      ]);

      const deleted = await t.gql(DELETE, { id: created.id }, owner.token);
      expect(deleted.data).toEqual({ deleteContext: true });
      await vi.waitFor(() => expect(events).toHaveLength(3), { timeout: 5_000 });
      expect(events[2]).toEqual({ kind: 'complete' });
    });

    it('refuses another user’s subscription to a context as FORBIDDEN', async () => {
      const owner = await t.createUser('subscribed-owner');
      const stranger = await t.createUser('subscription-stranger');
      const created = await create({}, owner.token);

      const events = subscribe(stranger.token, created.id);
      await vi.waitFor(() => expect(events.length).toBeGreaterThan(0), { timeout: 5_000 });
      expect(errorCodes(events[0])).toEqual(['FORBIDDEN']);
    });
  });
});

describe('sweeping expired contexts', () => {
  let t: TestApp;
  let modelId: string;

  beforeAll(async () => {
    // Batches of 2, so a sweep of a few rows has to loop.
    t = await startTestApp({ env: { ...NO_SWEEPER, CONTEXT_SWEEP_BATCH_SIZE: '2' } });
    modelId = await insertModel(t.app.dataSource);
  });
  afterAll(async () => {
    await t?.stop();
  });

  const createContexts = async (count: number) => {
    const ids: string[] = [];
    for (let i = 0; i < count; i += 1) {
      const res = await t.gql(CREATE, { input: { model: { modelId } } }, t.adminToken);
      expect(res.errors).toBeUndefined();
      ids.push(res.data!.createContext.id as string);
    }
    return ids;
  };
  const expireAll = (ids: string[]) =>
    t.app.dataSource.query(
      `UPDATE contexts SET expires_at = now() - interval '1 minute' WHERE id = ANY($1)`,
      [ids],
    );
  const existing = async (ids: string[]) =>
    (
      (await t.app.dataSource.query('SELECT id FROM contexts WHERE id = ANY($1)', [ids])) as {
        id: string;
      }[]
    ).map((r) => r.id);

  it('deletes exactly the expired contexts, in batches, and returns how many', async () => {
    const expired = await createContexts(3);
    const [live] = await createContexts(1);
    await expireAll(expired);

    expect(await t.app.services.contexts.sweepExpired()).toBe(3);
    expect(await existing([...expired, live!])).toEqual([live]);
    expect(await t.app.services.contexts.sweepExpired()).toBe(0);
  });

  it('deletes each expired context exactly once when two sweeps run at the same time', async () => {
    const expired = await createContexts(9);
    const [live] = await createContexts(1);
    await expireAll(expired);

    const counts = await Promise.all([
      t.app.services.contexts.sweepExpired(),
      t.app.services.contexts.sweepExpired(),
    ]);
    expect(counts[0]! + counts[1]!).toBe(9);
    expect(await existing([...expired, live!])).toEqual([live]);
  });
});

describe('query counts of nested context reads', () => {
  let t: TestApp;

  const CONTEXTS = `query($first: Int!) {
    contexts(first: $first) {
      edges { node {
        id
        user { user { username } }
        model { model { name } }
        history(first: 5) { edges { node { sequence model { name } } } }
      } }
    }
  }`;
  const USERS = `query($first: Int!) {
    users(first: $first) {
      edges { node {
        contexts(first: 10) {
          edges { node { id history(last: 2) { edges { node { sequence } } } } }
        }
      } }
    }
  }`;

  beforeAll(async () => {
    // Without the replica's row copies, so that every level's one query shows in the count.
    t = await startTestApp({ env: { ...NO_SWEEPER, ROW_CACHE_TTL_MS: '0' } });
    const modelId = await insertModel(t.app.dataSource, 'nested-model');
    const users = [];
    for (let i = 0; i < 5; i += 1) {
      users.push(await t.createUser(`nested-${i}`));
    }
    const encryption = appEncryption();
    for (let i = 0; i < 50; i += 1) {
      const res = await t.gql(
        CREATE,
        { input: { userId: users[i % 5]!.id, model: { modelId } } },
        t.adminToken,
      );
      expect(res.errors).toBeUndefined();
      const contextId = res.data!.createContext.id as string;
      for (const sequence of [1, 2]) {
        const entryId = randomUUID();
        await t.app.dataSource.query(
          `INSERT INTO history_entries (id, context_id, sequence, model_id, input, output, parameters, latency_ms)
           VALUES ($1, $2, $3, $4, $5, $6, '{}', 1.5)`,
          [
            entryId,
            contextId,
            sequence,
            modelId,
            encryption.encryptJson({ turn: sequence }, `history_entries.input:${entryId}`),
            encryption.encryptJson({ reply: sequence }, `history_entries.output:${entryId}`),
          ],
        );
      }
      await t.app.dataSource.query('UPDATE contexts SET last_sequence = 2 WHERE id = $1', [
        contextId,
      ]);
    }
  }, 120_000);
  afterAll(async () => {
    await t?.stop();
  });

  const dbQueries = async () => (await t.app.metrics.dbQueries.get()).values[0]?.value ?? 0;

  /** Runs a query as the admin and returns its data and how many SQL statements it cost. */
  const measure = async (query: string, first: number) => {
    const before = await dbQueries();
    const res = await t.gql(query, { first }, t.adminToken);
    const statements = (await dbQueries()) - before;
    expect(res.errors).toBeUndefined();
    return { data: res.data!, statements };
  };

  it('reads 5 or 50 contexts with their owners, models and history in the same few queries', async () => {
    const small = await measure(CONTEXTS, 5);
    const large = await measure(CONTEXTS, 50);

    expect(small.data.contexts.edges).toHaveLength(5);
    expect(large.data.contexts.edges).toHaveLength(50);
    for (const { node } of large.data.contexts.edges) {
      expect(node.user.user.username).toMatch(/^nested-\d$/);
      expect(node.model.model.name).toBe('nested-model');
      expect(node.history.edges.map((e: any) => e.node)).toEqual([
        { sequence: 1, model: { name: 'nested-model' } },
        { sequence: 2, model: { name: 'nested-model' } },
      ]);
    }
    expect(large.statements).toBe(small.statements);
    expect(large.statements).toBeLessThanOrEqual(6);
  });

  it('reads the contexts and history of 2 or 6 users in the same number of queries', async () => {
    const small = await measure(USERS, 2);
    const large = await measure(USERS, 6);

    expect(small.data.users.edges).toHaveLength(2);
    expect(large.data.users.edges).toHaveLength(6);
    const contextsShown = large.data.users.edges.flatMap((e: any) => e.node.contexts.edges);
    expect(contextsShown).toHaveLength(50);
    for (const { node } of contextsShown) {
      expect(node.history.edges.map((e: any) => e.node.sequence)).toEqual([1, 2]);
    }
    expect(large.statements).toBe(small.statements);
  });
});
