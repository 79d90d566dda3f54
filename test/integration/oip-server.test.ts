import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/test-app';
import { copyShippedModels } from '../support/models';

const REGISTER = `mutation($input: RegisterModelInput!) { registerModel(input: $input) { id } }`;
const CREATE_CONTEXT = `mutation($input: CreateContextInput!) { createContext(input: $input) { id } }`;

describe('the Open Inference Protocol v2 API', () => {
  let t: TestApp;
  let modelDir: string;
  let base: string;
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    // A private model directory: the shipped models plus a tiny TENSOR model.
    modelDir = await copyShippedModels({ doubler: true });
    t = await startTestApp({ env: { MODEL_DIR: modelDir, CONTEXT_SWEEP_INTERVAL_MS: '0' } });
    base = `http://127.0.0.1:${t.app.port}`;
    const models = await t.gql('{ models { id name task } }', {}, t.adminToken);
    for (const m of models.data!.models) {
      ids[m.name] = m.id;
    }
    const doubler = await t.gql(
      REGISTER,
      {
        input: {
          name: 'doubler',
          version: '1',
          kind: 'ONNX',
          task: 'TENSOR',
          path: 'doubler.onnx',
        },
      },
      t.adminToken,
    );
    ids.doubler = doubler.data!.registerModel.id;
  });
  afterAll(async () => {
    await t?.stop();
    await rm(modelDir, { recursive: true, force: true });
  });

  async function call(
    route: string,
    options: { token?: string | null; body?: unknown; raw?: string } = {},
  ) {
    const token = options.token === undefined ? t.adminToken : options.token;
    const hasBody = options.body !== undefined || options.raw !== undefined;
    const res = await fetch(`${base}${route}`, {
      method: hasBody ? 'POST' : 'GET',
      headers: {
        ...(hasBody ? { 'content-type': 'application/json' } : {}),
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      body: options.raw ?? (hasBody ? JSON.stringify(options.body) : undefined),
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
  }

  const textRequest = (text: string, extra: Record<string, unknown> = {}) => ({
    inputs: [{ name: 'text', shape: [1], datatype: 'BYTES', data: [text] }],
    ...extra,
  });
  const outputJson = (body: any) => {
    expect(body.outputs).toHaveLength(1);
    expect(body.outputs[0]).toMatchObject({ name: 'output_json', shape: [1], datatype: 'BYTES' });
    return JSON.parse(body.outputs[0].data[0]);
  };

  describe('server routes', () => {
    it('reports liveness, readiness and server metadata without a token', async () => {
      expect(await call('/v2/health/live', { token: null })).toMatchObject({
        status: 200,
        body: { live: true },
      });
      expect(await call('/v2/health/ready', { token: null })).toMatchObject({
        status: 200,
        body: { ready: true },
      });
      expect(await call('/v2', { token: null })).toMatchObject({
        status: 200,
        body: { name: 'context-server', version: '0.1.0', extensions: [] },
      });
    });
  });

  describe('model metadata and readiness', () => {
    it('shows a text classifier through its BYTES face rather than its token ids', async () => {
      const res = await call('/v2/models/sentiment-afinn');
      expect(res.status).toBe(200);
      expect(res.body).toEqual({
        name: 'sentiment-afinn',
        versions: ['1'],
        platform: 'onnxruntime_onnx',
        inputs: [{ name: 'text', datatype: 'BYTES', shape: [-1] }],
        outputs: [{ name: 'output_json', datatype: 'BYTES', shape: [-1] }],
      });
      const generator = await call('/v2/models/moby-char-trigram/versions/1');
      expect(generator.body.inputs).toEqual([{ name: 'prompt', datatype: 'BYTES', shape: [-1] }]);
    });

    it('shows a TENSOR model with its real specs in OIP datatypes, -1 for dynamic dimensions', async () => {
      const res = await call('/v2/models/doubler');
      expect(res.body).toMatchObject({
        name: 'doubler',
        inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 3] }],
        outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 3] }],
      });
    });

    it('says a model is ready once it loads, for the newest or a named version', async () => {
      expect(await call('/v2/models/sentiment-afinn/ready')).toMatchObject({
        status: 200,
        body: { name: 'sentiment-afinn', ready: true },
      });
      expect((await call('/v2/models/sentiment-afinn/versions/1/ready')).status).toBe(200);
    });

    it('answers 404 for an unknown model or version', async () => {
      for (const route of [
        '/v2/models/no-such-model',
        '/v2/models/sentiment-afinn/versions/9',
        '/v2/models/no-such-model/ready',
      ]) {
        const res = await call(route);
        expect(res.status).toBe(404);
        expect(res.body.error).toMatch(/not found/);
      }
      expect(
        (await call('/v2/models/no-such-model/infer', { body: textRequest('hi') })).status,
      ).toBe(404);
    });

    it('refuses model routes without a valid token with 401 and says why', async () => {
      const missing = await call('/v2/models/sentiment-afinn', { token: null });
      expect(missing.status).toBe(401);
      expect(missing.body).toEqual({ error: 'Authentication required' });
      expect(missing.headers.get('www-authenticate')).toBe('Bearer');
      const invalid = await call('/v2/models/sentiment-afinn/infer', {
        token: 'not-a-jwt',
        body: textRequest('hi'),
      });
      expect(invalid).toMatchObject({ status: 401, body: { error: 'Invalid token' } });
      // Who may call is decided before what exists: an unknown name is not revealed.
      expect((await call('/v2/models/no-such-model', { token: null })).status).toBe(401);
    });
  });

  describe('inference', () => {
    it('classifies text sent as a BYTES input and answers with output_json', async () => {
      const res = await call('/v2/models/sentiment-afinn/infer', {
        body: textRequest('what a wonderful happy day', { id: 'req-1' }),
      });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({
        model_name: 'sentiment-afinn',
        model_version: '1',
        id: 'req-1',
        parameters: { batch_size: expect.any(Number), execution_provider: 'cpu' },
      });
      expect(res.body.parameters.latency_ms).toBeGreaterThanOrEqual(0);
      const output = outputJson(res.body);
      expect(output.label).toBe('positive');
      expect(output.scores.positive).toBeGreaterThan(0.5);
    });

    it('generates text from a prompt with the parameters given', async () => {
      const res = await call('/v2/models/moby-char-trigram/versions/1/infer', {
        body: {
          inputs: [{ name: 'prompt', shape: [1], datatype: 'BYTES', data: ['the whale'] }],
          parameters: { max_tokens: 5, seed: 7 },
        },
      });
      expect(res.status).toBe(200);
      expect(typeof res.body.id).toBe('string');
      expect(outputJson(res.body)).toMatchObject({ tokens: 5, finishReason: 'length' });
    });

    it('runs a TENSOR model on FP32 data and answers OIP tensors', async () => {
      const data = [1, 2, 3, -4, 0.5, 10];
      const res = await call('/v2/models/doubler/infer', {
        body: { inputs: [{ name: 'x', shape: [2, 3], datatype: 'FP32', data }] },
      });
      expect(res.status).toBe(200);
      expect(res.body.outputs).toEqual([
        { name: 'y', shape: [2, 3], datatype: 'FP32', data: data.map((v) => v * 2) },
      ]);
    });

    it.each([
      ['a body that is not JSON', { raw: '{"inputs": [' }, /Malformed request body/],
      ['a body without inputs', { body: { id: 'x' } }, /inputs must be a non-empty array/],
      [
        'an input without data',
        { body: { inputs: [{ name: 'text', datatype: 'BYTES', shape: [1] }] } },
        /data must be an array/,
      ],
      [
        'a number where text belongs',
        { body: { inputs: [{ name: 'text', datatype: 'BYTES', shape: [1], data: [42] }] } },
        /BYTES input named text/,
      ],
      ['an unknown parameter', { body: textRequest('hi', { parameters: { warp: 9 } }) }, /warp/],
      [
        'a context_id that is not a string',
        { body: textRequest('hi', { parameters: { context_id: 5 } }) },
        /context_id/,
      ],
    ])('refuses %s with 400 and a message', async (_case, options, message) => {
      const res = await call('/v2/models/sentiment-afinn/infer', options);
      expect(res.status).toBe(400);
      expect(res.body.error).toMatch(message);
      expect(JSON.stringify(res.body)).not.toMatch(/at .*\.ts:\d+/);
    });

    it('refuses tensors that do not fit the model with 400', async () => {
      const res = await call('/v2/models/doubler/infer', {
        body: { inputs: [{ name: 'x', shape: [1, 2], datatype: 'FP32', data: [1, 2] }] },
      });
      expect(res.status).toBe(400);
      expect(res.body.error).toMatch(/does not fit/);
    });

    it("applies a context's owner check to context_id and records the turn for its owner", async () => {
      const owner = await t.createUser('oip-owner');
      const stranger = await t.createUser('oip-stranger');
      const contextId = (
        await t.gql(
          CREATE_CONTEXT,
          { input: { model: { modelId: ids['sentiment-afinn'] } } },
          owner.token,
        )
      ).data!.createContext.id;
      const request = textRequest('a lovely day', { parameters: { context_id: contextId } });
      const refused = await call('/v2/models/sentiment-afinn/infer', {
        token: stranger.token,
        body: request,
      });
      expect(refused.status).toBe(403);
      const served = await call('/v2/models/sentiment-afinn/infer', {
        token: owner.token,
        body: request,
      });
      expect(served.status).toBe(200);
      const history = await t.gql(
        'query($id: ID!) { context(id: $id) { history { totalCount } } }',
        { id: contextId },
        owner.token,
      );
      expect(history.data!.context.history.totalCount).toBe(1);
    });

    it('answers 429 with Retry-After over the rate limit', async () => {
      await t.gql(
        REGISTER,
        {
          input: {
            name: 'oip-limited',
            version: '1',
            kind: 'ONNX',
            task: 'TEXT_CLASSIFICATION',
            path: 'sentiment-afinn/model.onnx',
            rateLimitPerMinute: 1,
          },
        },
        t.adminToken,
      );
      expect(
        (await call('/v2/models/oip-limited/infer', { body: textRequest('one') })).status,
      ).toBe(200);
      const refused = await call('/v2/models/oip-limited/infer', { body: textRequest('two') });
      expect(refused.status).toBe(429);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(refused.body.error).toMatch(/rate limit/);
    });
  });

  it('leaves GraphQL and its own body limit in place', async () => {
    const res = await t.gql('{ models { name } }', {}, t.adminToken);
    expect(res.status).toBe(200);
    const big = await fetch(`${base}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ __typename }', padding: 'x'.repeat(2 * 1024 * 1024) }),
    });
    expect(big.status).toBe(413);
  });
});
