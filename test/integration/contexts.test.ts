import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codes } from '../support/graphql-client';
import { insertModel } from '../support/models';
import { startTestApp, type TestApp } from '../support/test-app';

const FIELDS = `id version schemaVersion
  user { user { id username } preferences demographics }
  environment { timestamp deploymentEnvironment serverLoad availableResources }
  model { model { id name } parameters constraints }
  data { source timestamp qualityMetrics }
  customAttributes createdAt updatedAt expiresAt`;
const CREATE = `mutation($input: CreateContextInput!) { createContext(input: $input) { ${FIELDS} } }`;
const GET = `query($id: ID!) { context(id: $id) { ${FIELDS} } }`;
const UPDATE = `mutation($id: ID!, $patch: UpdateContextInput!, $v: Int) {
  updateContext(id: $id, patch: $patch, expectedVersion: $v) { ${FIELDS} } }`;
const BATCH = `mutation($u: [ContextUpdate!]!) { updateContexts(updates: $u) { id version customAttributes } }`;
const DELETE = `mutation($id: ID!) { deleteContext(id: $id) }`;
const COUNT = `{ contexts { totalCount } }`;

describe('contexts', () => {
  let t: TestApp;
  let modelId: string;
  let otherModelId: string;
  let alice: { id: string; token: string };
  let bob: { id: string; token: string };

  beforeAll(async () => {
    t = await startTestApp({ env: { CONTEXT_SWEEP_INTERVAL_MS: '0' } });
    modelId = await insertModel(t.app.dataSource, 'gen', '1');
    otherModelId = await insertModel(t.app.dataSource, 'gen', '2');
    alice = await t.createUser('alice');
    bob = await t.createUser('bob');
  });
  afterAll(async () => {
    await t?.stop();
  });

  const create = async (token: string, input: Record<string, unknown> = {}) => {
    const res = await t.gql(CREATE, { input: { model: { modelId }, ...input } }, token);
    if (!res.data?.createContext) {
      throw new Error(JSON.stringify(res.errors));
    }
    return res.data.createContext;
  };
  const count = async (token: string) =>
    (await t.gql(COUNT, {}, token)).data!.contexts.totalCount as number;

  describe('createContext', () => {
    it('fills sections left out with defaults and belongs to the caller', async () => {
      const c = await create(alice.token);
      expect(c).toMatchObject({
        version: 1,
        schemaVersion: 1,
        user: { user: { id: alice.id, username: 'alice' }, preferences: {}, demographics: null },
        environment: { deploymentEnvironment: 'PRODUCTION', serverLoad: 0, availableResources: {} },
        model: { model: { id: modelId, name: 'gen' }, parameters: {}, constraints: {} },
        data: { source: 'unknown', timestamp: null, qualityMetrics: {} },
        customAttributes: {},
      });
      expect(Math.abs(Date.parse(c.environment.timestamp) - Date.now())).toBeLessThan(60_000);
      expect(Date.parse(c.expiresAt) - Date.parse(c.updatedAt)).toBe(30 * 24 * 3600 * 1000);
    });

    it('stores every section given', async () => {
      const input = {
        user: {
          preferences: { creativity: 'high', language: 'fr' },
          demographics: { ageGroup: '25-34' },
        },
        environment: {
          deploymentEnvironment: 'STAGING',
          serverLoad: 0.42,
          availableResources: { gpu: 1 },
          timestamp: '2026-01-02T03:04:05.000Z',
        },
        model: { modelId, parameters: { temperature: 0.3 }, constraints: { maxLatencyMs: 200 } },
        data: {
          source: 'crm',
          timestamp: '2026-01-01T00:00:00.000Z',
          qualityMetrics: { noiseLevel: 0.1 },
        },
        customAttributes: { tier: 'gold', nested: { list: [1, 2, 3] } },
      };
      const c = await create(alice.token, input);
      const read = (await t.gql(GET, { id: c.id }, alice.token)).data!.context;
      expect(read).toEqual(c);
      expect(read.environment).toMatchObject({
        ...input.environment,
        timestamp: '2026-01-02T03:04:05.000Z',
      });
      expect(read.customAttributes).toEqual(input.customAttributes);
      expect(read.data).toEqual({ ...input.data, timestamp: '2026-01-01T00:00:00.000Z' });
    });

    it('lets an admin create a context for another user, but not a plain user', async () => {
      const c = await create(t.adminToken, { userId: bob.id });
      expect(c.user.user.id).toBe(bob.id);
      const res = await t.gql(
        CREATE,
        { input: { userId: bob.id, model: { modelId } } },
        alice.token,
      );
      expect(codes(res)).toEqual(['FORBIDDEN']);
    });

    it.each([
      ['a serverLoad above 1', { environment: { serverLoad: 1.5 } }, 'BAD_USER_INPUT'],
      ['a negative serverLoad', { environment: { serverLoad: -0.1 } }, 'BAD_USER_INPUT'],
      [
        'an unknown deployment environment',
        { environment: { deploymentEnvironment: 'MARS' } },
        'BAD_USER_INPUT',
      ],
      ['a malformed timestamp', { environment: { timestamp: 'yesterday' } }, 'BAD_USER_INPUT'],
      ['preferences that are not an object', { user: { preferences: [1, 2] } }, 'BAD_USER_INPUT'],
      ['custom attributes that are a string', { customAttributes: 'hello' }, 'BAD_USER_INPUT'],
      [
        'a non-numeric quality metric',
        { data: { qualityMetrics: { noiseLevel: 'loud' } } },
        'BAD_USER_INPUT',
      ],
      ['an empty data source', { data: { source: '' } }, 'BAD_USER_INPUT'],
      ['a ttl below a minute', { ttlSeconds: 5 }, 'BAD_USER_INPUT'],
      ['a malformed userId', { userId: 'me' }, 'BAD_USER_INPUT'],
      ['a userId of nobody', { userId: '00000000-0000-4000-8000-000000000000' }, 'BAD_USER_INPUT'],
    ])('refuses %s and writes nothing', async (_case, input, code) => {
      const before = await count(t.adminToken);
      const res = await t.gql(CREATE, { input: { model: { modelId }, ...input } }, t.adminToken);
      expect(codes(res)).toEqual([code]);
      expect(res.data ?? null).toBeNull();
      expect(await count(t.adminToken)).toBe(before);
    });

    it('refuses a model that does not exist or is deleted', async () => {
      const missing = await t.gql(
        CREATE,
        { input: { model: { modelId: '00000000-0000-4000-8000-000000000000' } } },
        alice.token,
      );
      expect(codes(missing)).toEqual(['BAD_USER_INPUT']);
      const deleted = await insertModel(t.app.dataSource, 'gone', '1');
      await t.app.dataSource.query('UPDATE models SET deleted_at = now() WHERE id = $1', [deleted]);
      const res = await t.gql(CREATE, { input: { model: { modelId: deleted } } }, alice.token);
      expect(codes(res)).toEqual(['BAD_USER_INPUT']);
    });

    it('refuses credential-like keys at any depth, naming the path, and stores nothing', async () => {
      const before = await count(alice.token);
      const res = await t.gql(
        CREATE,
        {
          input: {
            model: { modelId },
            user: { preferences: { theme: 'dark', auth: { password: 'hunter2' } } },
            customAttributes: { services: [{ name: 'x', apiKey: 'sk-123' }] },
          },
        },
        alice.token,
      );
      expect(codes(res)).toEqual(['BAD_USER_INPUT']);
      expect(res.errors![0]!.message).toContain('user.preferences.auth');
      expect(res.errors![0]!.message).toContain('customAttributes.services[0].apiKey');
      expect(JSON.stringify(res)).not.toContain('hunter2');
      expect(JSON.stringify(res)).not.toContain('sk-123');
      expect(await count(alice.token)).toBe(before);
    });

    it('refuses a context over the size limit with its size and the limit, and stores nothing', async () => {
      const before = await count(alice.token);
      const res = await t.gql(
        CREATE,
        { input: { model: { modelId }, customAttributes: { blob: 'x'.repeat(110_000) } } },
        alice.token,
      );
      expect(codes(res)).toEqual(['CONTEXT_TOO_LARGE']);
      expect(res.errors![0]!.extensions).toMatchObject({ limit: 102_400 });
      expect(res.errors![0]!.extensions!.size).toBeGreaterThan(110_000);
      expect(await count(alice.token)).toBe(before);
    });
  });

  describe('reading', () => {
    it('shows a context to its owner and admins, FORBIDDEN to others, null when missing', async () => {
      const c = await create(alice.token);
      expect((await t.gql(GET, { id: c.id }, alice.token)).data!.context.id).toBe(c.id);
      expect((await t.gql(GET, { id: c.id }, t.adminToken)).data!.context.id).toBe(c.id);
      expect(codes(await t.gql(GET, { id: c.id }, bob.token))).toEqual(['FORBIDDEN']);
      expect(codes(await t.gql(GET, { id: c.id }))).toEqual(['UNAUTHENTICATED']);
      expect(
        (await t.gql(GET, { id: '00000000-0000-4000-8000-000000000000' }, alice.token)).data!
          .context,
      ).toBeNull();
      expect(codes(await t.gql(GET, { id: 'not-an-id' }, alice.token))).toEqual(['BAD_USER_INPUT']);
    });

    it("lists only the caller's contexts; admins see all and may filter by user", async () => {
      const carol = await t.createUser('carol');
      await create(carol.token);
      await create(carol.token);
      const mine = await t.gql(
        '{ contexts { totalCount edges { node { user { user { id } } } } } }',
        {},
        carol.token,
      );
      expect(mine.data!.contexts.totalCount).toBe(2);
      expect(mine.data!.contexts.edges.every((e: any) => e.node.user.user.id === carol.id)).toBe(
        true,
      );

      const Q = 'query($f: ContextFilter) { contexts(filter: $f) { totalCount } }';
      expect(
        (await t.gql(Q, { f: { userId: carol.id } }, t.adminToken)).data!.contexts.totalCount,
      ).toBe(2);
      expect(codes(await t.gql(Q, { f: { userId: carol.id } }, bob.token))).toEqual(['FORBIDDEN']);
      expect(await count(t.adminToken)).toBeGreaterThan(2);
    });

    it('filters by model and by update time', async () => {
      const dave = await t.createUser('dave');
      await create(dave.token);
      const since = new Date().toISOString();
      await new Promise((r) => setTimeout(r, 5));
      await create(dave.token, { model: { modelId: otherModelId } });
      const Q = 'query($f: ContextFilter) { contexts(filter: $f) { totalCount } }';
      expect(
        (await t.gql(Q, { f: { modelId: otherModelId } }, dave.token)).data!.contexts.totalCount,
      ).toBe(1);
      expect(
        (await t.gql(Q, { f: { updatedSince: since } }, dave.token)).data!.contexts.totalCount,
      ).toBe(1);
    });

    it('pages newest first with keyset cursors, each context exactly once', async () => {
      const erin = await t.createUser('erin');
      const ids: string[] = [];
      for (let i = 0; i < 7; i++) {
        ids.push((await create(erin.token)).id);
      }
      const seen: string[] = [];
      let after: string | null = null;
      for (;;) {
        const res: any = await t.gql(
          'query($after: String) { contexts(first: 3, after: $after) { edges { node { id } } pageInfo { hasNextPage endCursor } } }',
          { after },
          erin.token,
        );
        seen.push(...res.data.contexts.edges.map((e: any) => e.node.id));
        if (!res.data.contexts.pageInfo.hasNextPage) {
          break;
        }
        after = res.data.contexts.pageInfo.endCursor;
      }
      expect(seen).toEqual([...ids].reverse());
      const Q =
        'query($first: Int, $after: String) { contexts(first: $first, after: $after) { totalCount } }';
      expect(codes(await t.gql(Q, { first: 101 }, erin.token))).toEqual(['BAD_USER_INPUT']);
      expect(codes(await t.gql(Q, { after: 'garbage' }, erin.token))).toEqual(['BAD_USER_INPUT']);
    });

    it("refuses another user's contexts through user { contexts }", async () => {
      const Q = 'query($id: ID!) { user(id: $id) { contexts { totalCount } } }';
      expect(codes(await t.gql(Q, { id: alice.id }, bob.token))).toEqual(['FORBIDDEN']);
      expect(
        (await t.gql(Q, { id: alice.id }, t.adminToken)).data!.user.contexts.totalCount,
      ).toBeGreaterThan(0);
      expect(
        (
          await t.gql(
            '{ me { contexts(first: 1) { totalCount edges { node { id } } } } }',
            {},
            alice.token,
          )
        ).data!.me.contexts.edges,
      ).toHaveLength(1);
    });
  });

  describe('updateContext', () => {
    it('replaces only the sections given, bumps the version and keeps the rest', async () => {
      const c = await create(alice.token, {
        user: { preferences: { creativity: 'low' } },
        environment: { serverLoad: 0.5 },
        customAttributes: { keep: true },
      });
      const res = await t.gql(
        UPDATE,
        { id: c.id, patch: { environment: { serverLoad: 0.9 } } },
        alice.token,
      );
      const u = res.data!.updateContext;
      expect(u.version).toBe(2);
      expect(u.environment.serverLoad).toBe(0.9);
      expect(u.user.preferences).toEqual({ creativity: 'low' });
      expect(u.customAttributes).toEqual({ keep: true });
      expect(Date.parse(u.updatedAt)).toBeGreaterThanOrEqual(Date.parse(c.updatedAt));
    });

    it('moves a context to another model', async () => {
      const c = await create(alice.token);
      const res = await t.gql(
        UPDATE,
        { id: c.id, patch: { model: { modelId: otherModelId, parameters: { top_k: 5 } } } },
        alice.token,
      );
      expect(res.data!.updateContext.model).toMatchObject({
        model: { id: otherModelId },
        parameters: { top_k: 5 },
      });
    });

    it('answers a stale expectedVersion with CONFLICT and the current version, writing nothing', async () => {
      const c = await create(alice.token);
      await t.gql(UPDATE, { id: c.id, patch: { customAttributes: { n: 1 } }, v: 1 }, alice.token);
      const res = await t.gql(
        UPDATE,
        { id: c.id, patch: { customAttributes: { n: 2 } }, v: 1 },
        alice.token,
      );
      expect(codes(res)).toEqual(['CONFLICT']);
      expect(res.errors![0]!.extensions).toMatchObject({ currentVersion: 2 });
      expect((await t.gql(GET, { id: c.id }, alice.token)).data!.context.customAttributes).toEqual({
        n: 1,
      });
    });

    it('lets exactly one of two concurrent updates with the same expectedVersion win', async () => {
      const c = await create(alice.token);
      const results = await Promise.all(
        [1, 2].map((n) =>
          t.gql(UPDATE, { id: c.id, patch: { customAttributes: { n } }, v: 1 }, alice.token),
        ),
      );
      const winners = results.filter((r) => r.data?.updateContext);
      const losers = results.filter((r) => codes(r)[0] === 'CONFLICT');
      expect(winners).toHaveLength(1);
      expect(losers).toHaveLength(1);
      const stored = (await t.gql(GET, { id: c.id }, alice.token)).data!.context;
      expect(stored.version).toBe(2);
      expect(stored.customAttributes).toEqual(winners[0]!.data!.updateContext.customAttributes);
    });

    it("refuses another user's context and a missing one", async () => {
      const c = await create(alice.token);
      expect(codes(await t.gql(UPDATE, { id: c.id, patch: {} }, bob.token))).toEqual(['FORBIDDEN']);
      expect(
        codes(
          await t.gql(UPDATE, { id: '00000000-0000-4000-8000-000000000000', patch: {} }, bob.token),
        ),
      ).toEqual(['NOT_FOUND']);
    });

    it('refuses an update over the size limit and keeps the old state', async () => {
      const c = await create(alice.token, { customAttributes: { small: true } });
      const res = await t.gql(
        UPDATE,
        { id: c.id, patch: { customAttributes: { big: 'y'.repeat(120_000) } } },
        alice.token,
      );
      expect(codes(res)).toEqual(['CONTEXT_TOO_LARGE']);
      const stored = (await t.gql(GET, { id: c.id }, alice.token)).data!.context;
      expect(stored).toMatchObject({ version: 1, customAttributes: { small: true } });
    });
  });

  describe('updateContexts', () => {
    it('applies every update in one transaction', async () => {
      const a = await create(alice.token);
      const b = await create(alice.token);
      const res = await t.gql(
        BATCH,
        {
          u: [
            { id: a.id, patch: { customAttributes: { batch: 'a' } }, expectedVersion: 1 },
            { id: b.id, patch: { customAttributes: { batch: 'b' } } },
          ],
        },
        alice.token,
      );
      expect(res.data!.updateContexts).toEqual([
        { id: a.id, version: 2, customAttributes: { batch: 'a' } },
        { id: b.id, version: 2, customAttributes: { batch: 'b' } },
      ]);
    });

    it.each([
      [
        'a stale version',
        (ids: string[]) => [
          { id: ids[0], patch: {} },
          { id: ids[1], patch: {}, expectedVersion: 7 },
        ],
        'CONFLICT',
      ],
      [
        'a bad serverLoad',
        (ids: string[]) => [
          { id: ids[0], patch: {} },
          { id: ids[1], patch: { environment: { serverLoad: 3 } } },
        ],
        'BAD_USER_INPUT',
      ],
      [
        'a missing context',
        (ids: string[]) => [
          { id: ids[0], patch: {} },
          { id: '00000000-0000-4000-8000-000000000000', patch: {} },
        ],
        'NOT_FOUND',
      ],
      [
        'the same context twice',
        (ids: string[]) => [
          { id: ids[0], patch: {} },
          { id: ids[0], patch: {} },
        ],
        'BAD_USER_INPUT',
      ],
    ])('writes nothing when one item has %s, and names that item', async (_case, updates, code) => {
      const a = await create(alice.token, { customAttributes: { v: 0 } });
      const b = await create(alice.token, { customAttributes: { v: 0 } });
      const res = await t.gql(
        BATCH,
        {
          u: updates([a.id, b.id]).map((u) => ({
            ...u,
            patch: { ...u.patch, customAttributes: { v: 1 } },
          })),
        },
        alice.token,
      );
      expect(codes(res)).toEqual([code]);
      expect(res.errors![0]!.message).toMatch(/^updates\[1\]: /);
      expect(res.errors![0]!.extensions!.index).toBe(1);
      for (const id of [a.id, b.id]) {
        expect((await t.gql(GET, { id }, alice.token)).data!.context).toMatchObject({
          version: 1,
          customAttributes: { v: 0 },
        });
      }
    });

    it("refuses a batch touching another user's context and writes nothing", async () => {
      const mine = await create(bob.token, { customAttributes: { v: 0 } });
      const theirs = await create(alice.token);
      const res = await t.gql(
        BATCH,
        {
          u: [
            { id: mine.id, patch: { customAttributes: { v: 1 } } },
            { id: theirs.id, patch: {} },
          ],
        },
        bob.token,
      );
      expect(codes(res)).toEqual(['FORBIDDEN']);
      expect((await t.gql(GET, { id: mine.id }, bob.token)).data!.context.version).toBe(1);
    });
  });

  describe('deleting', () => {
    it('deletes a context for its owner only', async () => {
      const c = await create(alice.token);
      expect(codes(await t.gql(DELETE, { id: c.id }, bob.token))).toEqual(['FORBIDDEN']);
      expect((await t.gql(DELETE, { id: c.id }, alice.token)).data!.deleteContext).toBe(true);
      expect((await t.gql(GET, { id: c.id }, alice.token)).data!.context).toBeNull();
      expect(codes(await t.gql(DELETE, { id: c.id }, alice.token))).toEqual(['NOT_FOUND']);
    });

    it("erases a user's contexts, history and account in one go, with counts and a receipt", async () => {
      const frank = await t.createUser('frank');
      const c1 = await create(frank.token);
      await create(frank.token);
      await t.app.dataSource.query(
        `INSERT INTO history_entries (context_id, sequence, model_id, input, output) VALUES ($1, 1, $2, '\\x00', '\\x00'), ($1, 2, $2, '\\x00', '\\x00')`,
        [c1.id, modelId],
      );
      const ERASE =
        'mutation($id: ID!) { deleteUserData(userId: $id) { contexts historyEntries user } }';
      expect(codes(await t.gql(ERASE, { id: frank.id }, bob.token))).toEqual(['FORBIDDEN']);

      const res = await t.gql(ERASE, { id: frank.id }, frank.token);
      expect(res.data!.deleteUserData).toEqual({ contexts: 2, historyEntries: 2, user: true });
      const [{ n }] = await t.app.dataSource.query(
        `SELECT (SELECT count(*) FROM contexts WHERE user_id = $1) + (SELECT count(*) FROM users WHERE id = $1)
           + (SELECT count(*) FROM history_entries WHERE context_id = $2) AS n`,
        [frank.id, c1.id],
      );
      expect(Number(n)).toBe(0);
      expect(codes(await t.gql('{ me { id } }', {}, frank.token))).toEqual([]);
      expect((await t.gql('{ me { id } }', {}, frank.token)).data!.me).toBeNull();

      const receipts = await t.gql(
        '{ erasureReceipts(first: 50) { totalCount edges { node { requestedBy selfRequested contexts historyEntries userDeleted createdAt } } } }',
        {},
        t.adminToken,
      );
      const receipt = receipts.data!.erasureReceipts.edges.at(-1).node;
      expect(receipt).toMatchObject({
        requestedBy: frank.id,
        selfRequested: true,
        contexts: 2,
        historyEntries: 2,
        userDeleted: true,
      });
      expect(JSON.stringify(receipt)).not.toContain('frank');
      expect(codes(await t.gql('{ erasureReceipts { totalCount } }', {}, bob.token))).toEqual([
        'FORBIDDEN',
      ]);
    });

    it('lets an admin erase any user but never the last admin', async () => {
      const gina = await t.createUser('gina');
      const ERASE = 'mutation($id: ID!) { deleteUserData(userId: $id) { user } }';
      expect((await t.gql(ERASE, { id: gina.id }, t.adminToken)).data!.deleteUserData.user).toBe(
        true,
      );
      const admin = (await t.gql('{ me { id } }', {}, t.adminToken)).data!.me.id;
      expect(codes(await t.gql(ERASE, { id: admin }, t.adminToken))).toEqual(['BAD_USER_INPUT']);
      expect(
        codes(await t.gql(ERASE, { id: '00000000-0000-4000-8000-000000000000' }, t.adminToken)),
      ).toEqual(['NOT_FOUND']);
    });
  });

  describe('with CONTEXT_SECRET_POLICY=strip', () => {
    let s: TestApp;
    beforeAll(async () => {
      s = await startTestApp({
        env: { CONTEXT_SECRET_POLICY: 'strip', CONTEXT_SWEEP_INTERVAL_MS: '0' },
      });
    });
    afterAll(async () => {
      await s?.stop();
    });

    it('drops credential-like keys, stores the rest and says which paths it removed', async () => {
      const model = await insertModel(s.app.dataSource);
      const res = await s.gql(
        `mutation($input: CreateContextInput!) { createContext(input: $input) { id customAttributes user { preferences } } }`,
        {
          input: {
            model: { modelId: model },
            user: { preferences: { theme: 'dark', token: 'abc' } },
            customAttributes: { keep: 1, db: { password: 'hunter2' } },
          },
        },
        s.adminToken,
      );
      expect(res.errors).toBeUndefined();
      expect(res.data!.createContext.customAttributes).toEqual({ keep: 1, db: {} });
      expect(res.data!.createContext.user.preferences).toEqual({ theme: 'dark' });
      const raw = await fetch(s.app.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${s.adminToken}` },
        body: JSON.stringify({
          query: `mutation($id: ID!) { updateContext(id: $id, patch: { customAttributes: { apiKey: "k" } }) { id } }`,
          variables: { id: res.data!.createContext.id },
        }),
      });
      const body = (await raw.json()) as any;
      expect(body.extensions.warnings).toEqual([
        expect.objectContaining({ code: 'SECRETS_STRIPPED', paths: ['customAttributes.apiKey'] }),
      ]);
    });
  });
});
