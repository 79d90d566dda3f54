import { cp, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codes } from '../support/graphql-client';
import { copyShippedModels } from '../support/models';
import { startTestApp, type TestApp } from '../support/test-app';

const INFER = `mutation($m: ID!, $input: JSON!, $c: ID, $p: JSONObject) {
  infer(modelId: $m, input: $input, contextId: $c, parameters: $p) {
    output parameters cached batchSize executionProvider latencyMs
    model { id name executionProvider }
    historyEntry { sequence input output parameters model { name } }
  } }`;
const REGISTER = `mutation($input: RegisterModelInput!) {
  registerModel(input: $input) { id name version task inputs { name type dims } outputs { name type dims } } }`;
const CREATE_CONTEXT = `mutation($input: CreateContextInput!) { createContext(input: $input) { id } }`;

describe('models and inference', () => {
  let t: TestApp;
  let modelDir: string;
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    // A private model directory: the shipped models, plus files the tests add.
    modelDir = await copyShippedModels();
    t = await startTestApp({ env: { MODEL_DIR: modelDir, CONTEXT_SWEEP_INTERVAL_MS: '0' } });
    const models = await t.gql('{ models { id name version task } }', {}, t.adminToken);
    for (const m of models.data!.models) {
      ids[m.name] = m.id;
    }
  });
  afterAll(async () => {
    await t?.stop();
    await rm(modelDir, { recursive: true, force: true });
  });

  const infer = (token: string, vars: Record<string, unknown>) => t.gql(INFER, vars, token);
  const register = (input: Record<string, unknown>, token = t.adminToken) =>
    t.gql(REGISTER, { input: { kind: 'ONNX', version: '1', ...input } }, token);
  const newContext = async (token: string, input: Record<string, unknown> = {}) =>
    (
      await t.gql(
        CREATE_CONTEXT,
        { input: { model: { modelId: ids['moby-char-trigram'] }, ...input } },
        token,
      )
    ).data!.createContext.id as string;

  describe('the registry', () => {
    it('registers the shipped models at start with their real tensor specs', async () => {
      const res = await t.gql(
        '{ models { name task cacheable inputs { name type dims } outputs { name type dims } } }',
        {},
        t.adminToken,
      );
      const byName = Object.fromEntries(res.data!.models.map((m: any) => [m.name, m]));
      expect(Object.keys(byName).sort()).toEqual([
        'moby-char-trigram',
        'sentiment-afinn',
        'spam-classifier',
      ]);
      expect(byName['sentiment-afinn']).toMatchObject({
        task: 'TEXT_CLASSIFICATION',
        inputs: [{ name: 'token_ids', type: 'int64', dims: [-1, -1] }],
        outputs: [{ name: 'probabilities', type: 'float32', dims: [-1, 2] }],
      });
      expect(byName['moby-char-trigram'].inputs[0]).toMatchObject({
        name: 'context_ids',
        type: 'int64',
        dims: [-1, 2],
      });
    });

    it('registers the shipped models only once, however often the server starts', async () => {
      const again = await startTestApp({
        env: { DATABASE_URL: t.databaseUrl, MODEL_DIR: modelDir, CONTEXT_SWEEP_INTERVAL_MS: '0' },
      });
      await again.stop();
      const res = await t.gql('{ models { name } }', {}, t.adminToken);
      expect(res.data!.models.filter((m: any) => m.name === 'sentiment-afinn')).toHaveLength(1);
    });

    it('lets model developers and admins register a model, and nobody else', async () => {
      const dev = await t.createUser('dev', 'MODEL_DEVELOPER');
      const user = await t.createUser('plain');
      const input = {
        name: 'sentiment-copy',
        task: 'TEXT_CLASSIFICATION',
        path: 'sentiment-afinn/model.onnx',
      };
      expect(codes(await register(input, user.token))).toEqual(['FORBIDDEN']);
      const res = await register(input, dev.token);
      expect(res.data!.registerModel).toMatchObject({
        name: 'sentiment-copy',
        outputs: [{ name: 'probabilities' }],
      });
      expect(codes(await register(input, dev.token))).toEqual(['CONFLICT']);
    });

    it('is ready to serve a model as soon as it is registered, and releases it when deleted', async () => {
      const res = await register({
        name: 'ready-at-once',
        task: 'TEXT_CLASSIFICATION',
        path: 'sentiment-afinn/model.onnx',
      });
      const id = res.data!.registerModel.id as string;
      expect(t.app.services.registry.ready.get(id)?.handle.executionProvider).toBe('cpu');
      const deleted = await t.gql(
        'mutation($id: ID!) { deleteModel(id: $id) }',
        { id },
        t.adminToken,
      );
      expect(deleted.data).toEqual({ deleteModel: true });
      expect(t.app.services.registry.ready.has(id)).toBe(false);
      // The shipped model from the same file keeps its (shared) session.
      const still = await infer(t.adminToken, { m: ids['sentiment-afinn'], input: 'still fine' });
      expect(still.errors).toBeUndefined();
    });

    it.each([
      ['a path that climbs out of the model directory', { path: '../secrets.onnx' }],
      ['an absolute path outside it', { path: '/etc/passwd' }],
      ['a file that does not exist', { path: 'nope/model.onnx' }],
      ['a file that is not .onnx', { path: 'manifest.json' }],
      [
        'a REMOTE field on an ONNX model',
        { path: 'sentiment-afinn/model.onnx', endpoint: 'http://x' },
      ],
      ['a malformed name', { name: 'bad name!', path: 'sentiment-afinn/model.onnx' }],
    ])('refuses %s and writes nothing', async (_case, input) => {
      const before = (await t.gql('{ models { id } }', {}, t.adminToken)).data!.models.length;
      const res = await register({ name: 'refused', task: 'TEXT_CLASSIFICATION', ...input });
      expect(codes(res)).toEqual(['BAD_USER_INPUT']);
      expect((await t.gql('{ models { id } }', {}, t.adminToken)).data!.models.length).toBe(before);
    });

    it('refuses a broken ONNX file and a text model without its tokenizer', async () => {
      await writeFile(path.join(modelDir, 'broken.onnx'), 'this is not a protobuf');
      const broken = await register({ name: 'broken', task: 'TENSOR', path: 'broken.onnx' });
      expect(codes(broken)).toEqual(['BAD_USER_INPUT']);
      expect(broken.errors![0]!.message).toMatch(/not a valid ONNX model/);
      await cp(
        path.join(modelDir, 'sentiment-afinn', 'model.onnx'),
        path.join(modelDir, 'lonely.onnx'),
      );
      const lonely = await register({
        name: 'lonely',
        task: 'TEXT_CLASSIFICATION',
        path: 'lonely.onnx',
      });
      expect(codes(lonely)).toEqual(['BAD_USER_INPUT']);
      expect(lonely.errors![0]!.message).toMatch(/tokenizer/);
    });

    it('hides a deleted model and refuses inference on it, while contexts that use it still resolve', async () => {
      const res = await register({
        name: 'short-lived',
        task: 'TEXT_GENERATION',
        path: 'moby-char-trigram/model.onnx',
      });
      const id = res.data!.registerModel.id;
      const contextId = (
        await t.gql(CREATE_CONTEXT, { input: { model: { modelId: id } } }, t.adminToken)
      ).data!.createContext.id;
      expect(
        (await t.gql('mutation($id: ID!) { deleteModel(id: $id) }', { id }, t.adminToken)).data!
          .deleteModel,
      ).toBe(true);
      const names = (await t.gql('{ models { name } }', {}, t.adminToken)).data!.models.map(
        (m: any) => m.name,
      );
      expect(names).not.toContain('short-lived');
      expect(codes(await infer(t.adminToken, { m: id, input: 'x' }))).toEqual(['NOT_FOUND']);
      const ctx = await t.gql(
        'query($id: ID!) { context(id: $id) { model { model { name } } } }',
        { id: contextId },
        t.adminToken,
      );
      expect(ctx.data!.context.model.model.name).toBe('short-lived');
      expect(
        codes(await t.gql('mutation($id: ID!) { deleteModel(id: $id) }', { id }, t.adminToken)),
      ).toEqual(['NOT_FOUND']);
    });
  });

  describe('infer', () => {
    it('classifies text with the shipped sentiment and spam models', async () => {
      const happy = await infer(t.adminToken, {
        m: ids['sentiment-afinn'],
        input: 'what a wonderful, happy day',
      });
      expect(happy.data!.infer.output.label).toBe('positive');
      expect(happy.data!.infer.executionProvider).toBe('cpu');
      const sad = await infer(t.adminToken, {
        m: ids['sentiment-afinn'],
        input: { text: 'a terrible, sad and awful mess' },
      });
      expect(sad.data!.infer.output.label).toBe('negative');
      const spam = await infer(t.adminToken, {
        m: ids['spam-classifier'],
        input:
          'Congratulations! You have WON a FREE prize. Click here now to claim your cash, limited offer!!!',
      });
      expect(spam.data!.infer.output.label).toBe('spam');
      expect(spam.data!.infer.historyEntry).toBeNull();
      const model = await t.gql(
        'query($id: ID!) { model(id: $id) { executionProvider } }',
        { id: ids['sentiment-afinn'] },
        t.adminToken,
      );
      expect(model.data!.model.executionProvider).toBe('cpu');
    });

    it('adapts parameters to the context, answers formally and records the turn in history', async () => {
      const contextId = await newContext(t.adminToken, {
        user: { preferences: { creativity: 'high', verbosity: 'concise', formality: 'formal' } },
        environment: { serverLoad: 0.9, deploymentEnvironment: 'PRODUCTION' },
      });
      const res = await infer(t.adminToken, {
        m: ids['moby-char-trigram'],
        input: { prompt: 'call me ishmael' },
        c: contextId,
        p: { seed: 3 },
      });
      const result = res.data!.infer;
      expect(result.parameters.temperature).toBeGreaterThanOrEqual(0.9);
      expect(result.parameters.max_tokens).toBeLessThanOrEqual(256);
      expect(result.parameters.top_k).toBeLessThanOrEqual(10);
      expect(result.parameters.safety_filter).toBe(true);
      expect(result.parameters.server_load).toBeGreaterThanOrEqual(0.9);
      expect(result.output.text).toMatch(/^[A-Z]/);
      expect(result.output.text).toMatch(/[.!?]$/);
      expect(result.historyEntry).toMatchObject({
        sequence: 1,
        input: { prompt: 'call me ishmael' },
        output: result.output,
        model: { name: 'moby-char-trigram' },
      });
      const history = await t.gql(
        'query($id: ID!) { context(id: $id) { history { totalCount edges { node { sequence } } } } }',
        { id: contextId },
        t.adminToken,
      );
      expect(history.data!.context.history.totalCount).toBe(1);
    });

    it('lets explicit parameters win over every rule', async () => {
      const contextId = await newContext(t.adminToken, {
        user: { preferences: { creativity: 'high' } },
        model: { modelId: ids['moby-char-trigram'], parameters: { top_p: 0.5 } },
      });
      const res = await infer(t.adminToken, {
        m: ids['moby-char-trigram'],
        input: 'the whale',
        c: contextId,
        p: { temperature: 0.1, max_tokens: 5 },
      });
      expect(res.data!.infer.parameters).toMatchObject({
        temperature: 0.1,
        max_tokens: 5,
        top_p: 0.5,
      });
      expect(res.data!.infer.output.tokens).toBe(5);
    });

    it('generates the same text for the same seed', async () => {
      const run = () =>
        infer(t.adminToken, {
          m: ids['moby-char-trigram'],
          input: 'the sea',
          p: { seed: 42, max_tokens: 60 },
        });
      const [a, b] = [await run(), await run()];
      expect(a.data!.infer.output.text).toBe(b.data!.infer.output.text);
      const c = await infer(t.adminToken, {
        m: ids['moby-char-trigram'],
        input: 'the sea',
        p: { seed: 43, max_tokens: 60 },
      });
      expect(c.data!.infer.output.text).not.toBe(a.data!.infer.output.text);
    });

    it.each([
      ['an object without text for a classifier', 'sentiment-afinn', { words: 'hi' }, {}],
      ['a number as a prompt', 'moby-char-trigram', 42, {}],
      ['an unknown parameter', 'moby-char-trigram', 'hi', { warp_speed: 9 }],
      ['a temperature out of range', 'moby-char-trigram', 'hi', { temperature: 7 }],
      ['a fractional top_k', 'moby-char-trigram', 'hi', { top_k: 2.5 }],
    ])('refuses %s with BAD_USER_INPUT', async (_case, model, input, p) => {
      expect(codes(await infer(t.adminToken, { m: ids[model], input, p }))).toEqual([
        'BAD_USER_INPUT',
      ]);
    });

    it('refuses unknown models, malformed ids and contexts of other users', async () => {
      expect(
        codes(await infer(t.adminToken, { m: '00000000-0000-4000-8000-000000000000', input: 'x' })),
      ).toEqual(['NOT_FOUND']);
      expect(codes(await infer(t.adminToken, { m: 'abc', input: 'x' }))).toEqual([
        'BAD_USER_INPUT',
      ]);
      const owner = await t.createUser('owner');
      const stranger = await t.createUser('stranger');
      const contextId = await newContext(owner.token);
      expect(
        codes(await infer(stranger.token, { m: ids['sentiment-afinn'], input: 'x', c: contextId })),
      ).toEqual(['FORBIDDEN']);
      expect(
        codes(
          await infer(stranger.token, {
            m: ids['sentiment-afinn'],
            input: 'x',
            c: '00000000-0000-4000-8000-000000000000',
          }),
        ),
      ).toEqual(['NOT_FOUND']);
      expect(codes(await t.gql(INFER, { m: ids['sentiment-afinn'], input: 'x' }))).toEqual([
        'UNAUTHENTICATED',
      ]);
    });

    it('numbers 50 concurrent turns on one context 1..50 with no gap or duplicate', async () => {
      const contextId = await newContext(t.adminToken);
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          infer(t.adminToken, {
            m: ids['sentiment-afinn'],
            input: `turn ${i} is good`,
            c: contextId,
          }),
        ),
      );
      const sequences = results
        .map((r) => r.data!.infer.historyEntry.sequence)
        .sort((a: number, b: number) => a - b);
      expect(sequences).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
      const rows = await t.app.dataSource.query(
        'SELECT sequence FROM history_entries WHERE context_id = $1 ORDER BY sequence',
        [contextId],
      );
      expect(rows.map((r: { sequence: number }) => r.sequence)).toEqual(
        Array.from({ length: 50 }, (_, i) => i + 1),
      );
    });

    it('serves repeated deterministic requests from the result cache', async () => {
      const vars = { m: ids['sentiment-afinn'], input: 'a cached and lovely answer' };
      const first = await infer(t.adminToken, vars);
      const second = await infer(t.adminToken, vars);
      expect(first.data!.infer.cached).toBe(false);
      expect(second.data!.infer.cached).toBe(true);
      expect(second.data!.infer.output).toEqual(first.data!.infer.output);
      expect(
        (await infer(t.adminToken, { ...vars, input: 'another lovely answer' })).data!.infer.cached,
      ).toBe(false);
      const unseeded = { m: ids['moby-char-trigram'], input: 'the whale', p: { max_tokens: 5 } };
      await infer(t.adminToken, unseeded);
      expect((await infer(t.adminToken, unseeded)).data!.infer.cached).toBe(false);
      const seeded = { ...unseeded, p: { max_tokens: 5, seed: 9 } };
      await infer(t.adminToken, seeded);
      expect((await infer(t.adminToken, seeded)).data!.infer.cached).toBe(true);
    });

    it("keeps a classifier's answer cached when load changes its sampling parameters", async () => {
      const vars = { m: ids['sentiment-afinn'], input: 'a calm and pleasant answer' };
      const calm = await infer(t.adminToken, vars);
      expect(calm.data!.infer.cached).toBe(false);
      const busy = await newContext(t.adminToken, { environment: { serverLoad: 0.95 } });
      const underLoad = await infer(t.adminToken, { ...vars, c: busy });
      expect(underLoad.data!.infer.parameters.top_k).toBeLessThan(
        calm.data!.infer.parameters.top_k,
      );
      expect(underLoad.data!.infer.cached).toBe(true);
      expect(underLoad.data!.infer.output).toEqual(calm.data!.infer.output);

      // Generation depends on those parameters: the same seeded prompt runs again under load.
      const prompt = { m: ids['moby-char-trigram'], input: 'the sea', p: { seed: 4 } };
      expect((await infer(t.adminToken, prompt)).data!.infer.cached).toBe(false);
      expect((await infer(t.adminToken, { ...prompt, c: busy })).data!.infer.cached).toBe(false);
    });
  });

  describe('micro-batching', () => {
    it('serves 16 concurrent requests in shared runs with the outputs of single runs', async () => {
      const reg = await register({
        name: 'batched-moby',
        task: 'TEXT_GENERATION',
        path: 'moby-char-trigram/model.onnx',
        maxBatchSize: 16,
        maxQueueDelayMs: 200,
      });
      const batchedId = reg.data!.registerModel.id;
      const unbatched = await register({
        name: 'unbatched-moby',
        task: 'TEXT_GENERATION',
        path: 'moby-char-trigram/model.onnx',
        maxBatchSize: 1,
      });
      const unbatchedId = unbatched.data!.registerModel.id;
      // Explicit sampling parameters: under 16 concurrent requests the measured load would
      // (rightly) tighten top_k and max_tokens for the batched side only.
      const prompts = Array.from({ length: 16 }, (_, i) => ({
        input: `prompt number ${i}`,
        p: { seed: 100 + i, max_tokens: 30, top_k: 40, top_p: 0.95, temperature: 0.8 },
      }));

      const together = await Promise.all(
        prompts.map((x) => infer(t.adminToken, { m: batchedId, ...x })),
      );
      const alone = [];
      for (const x of prompts) {
        alone.push(await infer(t.adminToken, { m: unbatchedId, ...x }));
      }
      expect(Math.max(...together.map((r) => r.data!.infer.batchSize))).toBeGreaterThan(1);
      expect(alone.every((r) => r.data!.infer.batchSize === 1)).toBe(true);
      expect(together.map((r) => r.data!.infer.output.text)).toEqual(
        alone.map((r) => r.data!.infer.output.text),
      );
    });

    it('batches classification requests and splits the results back', async () => {
      const reg = await register({
        name: 'batched-sentiment',
        task: 'TEXT_CLASSIFICATION',
        path: 'sentiment-afinn/model.onnx',
        maxQueueDelayMs: 200,
      });
      const id = reg.data!.registerModel.id;
      const texts = Array.from({ length: 16 }, (_, i) =>
        i % 2 ? `good great happy ${i}` : `bad awful sad ${i}`,
      );
      const results = await Promise.all(
        texts.map((input) => infer(t.adminToken, { m: id, input })),
      );
      expect(Math.max(...results.map((r) => r.data!.infer.batchSize))).toBeGreaterThan(1);
      expect(results.map((r) => r.data!.infer.output.label)).toEqual(
        texts.map((_, i) => (i % 2 ? 'positive' : 'negative')),
      );
    });
  });

  describe('rate limits', () => {
    it('refuses requests over the per-model limit with RATE_LIMITED and retryAfterSeconds, across replicas', async () => {
      const reg = await register({
        name: 'limited',
        task: 'TEXT_CLASSIFICATION',
        path: 'sentiment-afinn/model.onnx',
        rateLimitPerMinute: 3,
      });
      const id = reg.data!.registerModel.id;
      const other = await startTestApp({
        env: { DATABASE_URL: t.databaseUrl, MODEL_DIR: modelDir, CONTEXT_SWEEP_INTERVAL_MS: '0' },
      });
      try {
        const outcomes = [];
        for (const app of [t, other, t, other]) {
          outcomes.push(
            await app.gql(INFER, { m: id, input: `text ${outcomes.length}` }, app.adminToken),
          );
        }
        expect(outcomes.slice(0, 3).every((r) => r.data?.infer)).toBe(true);
        const refused = outcomes[3]!;
        expect(codes(refused)).toEqual(['RATE_LIMITED']);
        const retry = refused.errors![0]!.extensions!.retryAfterSeconds as number;
        expect(retry).toBeGreaterThan(0);
        expect(retry).toBeLessThanOrEqual(60);
      } finally {
        await other.stop();
      }
    });
  });

  describe('history limit', () => {
    it('keeps only the newest HISTORY_LIMIT entries of a context', async () => {
      const small = await startTestApp({
        env: { MODEL_DIR: modelDir, HISTORY_LIMIT: '5', CONTEXT_SWEEP_INTERVAL_MS: '0' },
      });
      try {
        const models = await small.gql('{ models { id name } }', {}, small.adminToken);
        const sentiment = models.data!.models.find((m: any) => m.name === 'sentiment-afinn').id;
        const contextId = (
          await small.gql(
            CREATE_CONTEXT,
            { input: { model: { modelId: sentiment } } },
            small.adminToken,
          )
        ).data!.createContext.id;
        for (let i = 0; i < 8; i++) {
          await small.gql(
            INFER,
            { m: sentiment, input: `entry ${i}`, c: contextId },
            small.adminToken,
          );
        }
        const h = await small.gql(
          'query($id: ID!) { context(id: $id) { history(first: 10) { totalCount edges { node { sequence } } } } }',
          { id: contextId },
          small.adminToken,
        );
        expect(h.data!.context.history.totalCount).toBe(5);
        expect(h.data!.context.history.edges.map((e: any) => e.node.sequence)).toEqual([
          4, 5, 6, 7, 8,
        ]);

        // Appends that queue on the context's lock still trim what those before them committed.
        const holder = await small.app.dataSource.createQueryRunner();
        await holder.startTransaction();
        await holder.query('SELECT 1 FROM contexts WHERE id = $1 FOR UPDATE', [contextId]);
        const racing = Array.from({ length: 8 }, (_, i) =>
          small.app.services.history.append(
            {
              contextId,
              modelId: sentiment,
              input: `racing ${i}`,
              output: { label: 'positive' },
              parameters: {},
              latencyMs: 1,
            },
            5,
          ),
        );
        // Wait until all eight are queued on the lock (their snapshots are taken by then).
        for (let waiting = 0; waiting < 8;) {
          const [{ n }] = await small.app.dataSource.query(
            `SELECT count(*)::int AS n FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'`,
          );
          waiting = n;
        }
        await holder.commitTransaction();
        await holder.release();
        await Promise.all(racing);
        const raced = await small.app.dataSource.query(
          'SELECT sequence FROM history_entries WHERE context_id = $1 ORDER BY sequence',
          [contextId],
        );
        expect(raced.map((r: { sequence: number }) => r.sequence)).toEqual([12, 13, 14, 15, 16]);
      } finally {
        await small.stop();
      }
    });
  });
});
