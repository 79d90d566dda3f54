import { rm } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findFreePort } from '../../src/db/embedded-postgres';
import { codes } from '../support/graphql-client';
import { startTestApp, type TestApp } from '../support/test-app';
import { copyShippedModels } from '../support/models';

const REGISTER = `mutation($input: RegisterModelInput!) {
  registerModel(input: $input) { id inputs { name type dims } outputs { name type dims } } }`;
const INFER = `mutation($m: ID!, $input: JSON!, $p: JSONObject) {
  infer(modelId: $m, input: $input, parameters: $p) { output executionProvider batchSize } }`;

/**
 * A minimal TF Serving v1 REST server: model `m` doubles each number of each instance, and
 * model `tone` scores any text 0.2 / 0.8. It records the headers it was sent.
 */
async function startTfServing(): Promise<{
  url: string;
  headers: IncomingHttpHeaders[];
  server: Server;
}> {
  const headers: IncomingHttpHeaders[] = [];
  const signature = {
    inputs: {
      x: { dtype: 'DT_FLOAT', tensor_shape: { dim: [{ size: '-1' }, { size: '3' }] } },
    },
    outputs: {
      y: { dtype: 'DT_FLOAT', tensor_shape: { dim: [{ size: '-1' }, { size: '3' }] } },
    },
    method_name: 'tensorflow/serving/predict',
  };
  const server = createServer((req, res) => {
    headers.push(req.headers);
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      const send = (status: number, value: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(value));
      };
      const available = { model_version_status: [{ version: '1', state: 'AVAILABLE' }] };
      if (req.method === 'GET' && (req.url === '/v1/models/m' || req.url === '/v1/models/tone')) {
        send(200, available);
      } else if (req.method === 'GET' && req.url === '/v1/models/m/metadata') {
        send(200, {
          model_spec: { name: 'm', version: '1' },
          metadata: { signature_def: { signature_def: { serving_default: signature } } },
        });
      } else if (req.method === 'POST' && req.url === '/v1/models/m:predict') {
        const { instances } = JSON.parse(body) as { instances: number[][] };
        send(200, { predictions: instances.map((row) => row.map((v) => v * 2)) });
      } else if (req.method === 'POST' && req.url === '/v1/models/tone:predict') {
        const { instances } = JSON.parse(body) as { instances: string[] };
        send(200, { predictions: instances.map(() => [0.2, 0.8]) });
      } else {
        send(404, { error: `Servable not found for request: ${req.method} ${req.url}` });
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    headers,
    server,
  };
}

describe('REMOTE models', () => {
  // A serves its own models over /v2; B registers them as REMOTE models pointing at A.
  let a: TestApp;
  let b: TestApp;
  let modelDir: string;
  let aUrl: string;
  let tf: Awaited<ReturnType<typeof startTfServing>>;
  const aIds: Record<string, string> = {};

  beforeAll(async () => {
    modelDir = await copyShippedModels({ doubler: true });
    a = await startTestApp({ env: { MODEL_DIR: modelDir, CONTEXT_SWEEP_INTERVAL_MS: '0' } });
    aUrl = `http://127.0.0.1:${a.app.port}`;
    const doubler = await a.gql(
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
      a.adminToken,
    );
    aIds.doubler = doubler.data!.registerModel.id;
    tf = await startTfServing();
    b = await startTestApp({
      env: {
        MODEL_DIR: modelDir,
        CONTEXT_SWEEP_INTERVAL_MS: '0',
        REMOTE_AUTHORIZATION: JSON.stringify({ [aUrl]: `Bearer ${a.adminToken}` }),
        REMOTE_TIMEOUT_MS: '2000',
        REMOTE_RETRIES: '1',
      },
    });
  });
  afterAll(async () => {
    await b?.stop();
    await a?.stop();
    tf?.server.closeAllConnections();
    await new Promise((resolve) => (tf ? tf.server.close(resolve) : resolve(undefined)));
    await rm(modelDir, { recursive: true, force: true });
  });

  const registerOnB = async (input: Record<string, unknown>) => {
    const res = await b.gql(
      REGISTER,
      {
        input: {
          version: '1',
          kind: 'REMOTE',
          endpoint: aUrl,
          remoteProtocol: 'OPEN_INFERENCE_V2',
          ...input,
        },
      },
      b.adminToken,
    );
    expect(res.errors).toBeUndefined();
    return res.data!.registerModel as { id: string; inputs: unknown[]; outputs: unknown[] };
  };
  const inferOnB = (m: string, input: unknown, p?: Record<string, unknown>) =>
    b.gql(INFER, { m, input, p }, b.adminToken);

  describe('over the Open Inference Protocol v2', () => {
    it("classifies text with another server's model and reports the remote provider", async () => {
      const model = await registerOnB({
        name: 'remote-sentiment',
        task: 'TEXT_CLASSIFICATION',
        remoteName: 'sentiment-afinn',
      });
      expect(model.inputs).toEqual([{ name: 'text', type: 'string', dims: [-1] }]);
      const res = await inferOnB(model.id, 'what a wonderful happy day');
      expect(res.errors).toBeUndefined();
      expect(res.data!.infer.output.label).toBe('positive');
      expect(res.data!.infer.executionProvider).toBe('remote');
      const sad = await inferOnB(model.id, { text: 'a terrible, sad and awful mess' });
      expect(sad.data!.infer.output.label).toBe('negative');
    });

    it('runs a remote TENSOR model with the specs read from its metadata, answering as the in-process model does', async () => {
      const model = await registerOnB({
        name: 'remote-doubler',
        task: 'TENSOR',
        remoteName: 'doubler',
      });
      expect(model.inputs).toEqual([{ name: 'x', type: 'float32', dims: [-1, 3] }]);
      const input = { x: { shape: [2, 3], datatype: 'FP32', data: [1, 2, 3, 4, 5, 6] } };
      const remote = await inferOnB(model.id, input);
      expect(remote.errors).toBeUndefined();
      expect(remote.data!.infer.output.y).toMatchObject({
        shape: [2, 3],
        data: [2, 4, 6, 8, 10, 12],
      });
      const local = await a.gql(INFER, { m: aIds.doubler, input }, a.adminToken);
      expect(remote.data!.infer.output).toEqual(local.data!.infer.output);
    });

    it("refuses a tensor that does not fit the remote's specs before sending it", async () => {
      const model = await registerOnB({
        name: 'remote-doubler-2',
        task: 'TENSOR',
        remoteName: 'doubler',
      });
      const res = await inferOnB(model.id, {
        x: { shape: [1, 2], datatype: 'FP32', data: [1, 2] },
      });
      expect(codes(res)).toEqual(['BAD_USER_INPUT']);
    });

    it("passes on the remote's refusal of an input as INFERENCE_FAILED with its message", async () => {
      // B allows up to 4000 tokens and A's model 2000, so only A refuses 3000.
      const model = await registerOnB({
        name: 'remote-moby',
        task: 'TEXT_GENERATION',
        remoteName: 'moby-char-trigram',
        defaultParameters: { max_tokens_limit: 4000 },
      });
      const ok = await inferOnB(model.id, 'the whale', { max_tokens: 5, seed: 1 });
      expect(ok.errors).toBeUndefined();
      expect(ok.data!.infer.output.tokens).toBe(5);
      const refused = await inferOnB(model.id, 'the whale', { max_tokens: 3000 });
      expect(codes(refused)).toEqual(['INFERENCE_FAILED']);
      expect(refused.errors![0]!.message).toMatch(/max_tokens/);
    });

    it('answers MODEL_UNAVAILABLE quickly when nothing listens at the endpoint', async () => {
      const port = await findFreePort();
      // Registration succeeds while the remote is down; the model is usable once it is up.
      const model = await registerOnB({
        name: 'remote-down',
        task: 'TEXT_CLASSIFICATION',
        endpoint: `http://127.0.0.1:${port}`,
      });
      const started = Date.now();
      const res = await inferOnB(model.id, 'hello');
      expect(codes(res)).toEqual(['MODEL_UNAVAILABLE']);
      expect(Date.now() - started).toBeLessThan(3_000);
    });

    it('answers MODEL_UNAVAILABLE when the remote does not know the model', async () => {
      const model = await registerOnB({
        name: 'remote-missing',
        task: 'TEXT_CLASSIFICATION',
        remoteName: 'no-such-model',
      });
      expect(codes(await inferOnB(model.id, 'hello'))).toEqual(['MODEL_UNAVAILABLE']);
    });
  });

  describe('over TF Serving v1', () => {
    it('runs a TENSOR model through :predict and returns the doubled predictions', async () => {
      const model = await registerOnB({
        name: 'tf-doubler',
        task: 'TENSOR',
        endpoint: tf.url,
        remoteName: 'm',
        remoteProtocol: 'TFSERVING_V1',
      });
      expect(model.inputs).toEqual([{ name: 'x', type: 'float32', dims: [-1, 3] }]);
      const res = await inferOnB(model.id, {
        x: { shape: [2, 3], datatype: 'FP32', data: [1, 2, 3, 4, 5, 6] },
      });
      expect(res.errors).toBeUndefined();
      expect(res.data!.infer.output).toEqual({
        y: { shape: [2, 3], datatype: 'float32', data: [2, 4, 6, 8, 10, 12] },
      });
      expect(res.data!.infer.executionProvider).toBe('remote');
      // REMOTE_AUTHORIZATION names only A's origin: nothing is sent here.
      expect(tf.headers.length).toBeGreaterThan(0);
      expect(tf.headers.every((h) => h.authorization === undefined)).toBe(true);
    });

    it("labels a classifier's probabilities with the labels in its default parameters", async () => {
      const model = await registerOnB({
        name: 'tf-tone',
        task: 'TEXT_CLASSIFICATION',
        endpoint: tf.url,
        remoteName: 'tone',
        remoteProtocol: 'TFSERVING_V1',
        defaultParameters: { labels: ['negative', 'positive'] },
      });
      const res = await inferOnB(model.id, 'anything');
      expect(res.data!.infer.output).toEqual({
        label: 'positive',
        scores: { negative: 0.2, positive: 0.8 },
      });
    });
  });
});
