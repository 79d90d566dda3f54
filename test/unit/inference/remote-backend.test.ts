import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { findFreePort } from '../../../src/db/embedded-postgres';
import { type ModelEntity } from '../../../src/domains/model/model.entity';
import { InferenceError, ModelUnavailableError } from '../../../src/inference/backend';
import {
  createRemoteOpener,
  parseRemoteAuthorization,
  type RemoteSettings,
} from '../../../src/inference/remote/remote-backend';
import { type EffectiveParameters } from '../../../src/inference/types';
import { createLogger } from '../../../src/ops/logger';

type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

const servers: Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

/** A real HTTP server on a free port; `handler` sees every request with its body. */
async function serve(handler: Handler): Promise<string> {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => handler(req, res, body));
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const json = (res: ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};

const METADATA = {
  name: 'doubler',
  versions: ['1'],
  platform: 'onnxruntime_onnx',
  inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 3] }],
  outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 3] }],
};

function model(endpoint: string, overrides: Partial<ModelEntity> = {}): ModelEntity {
  return {
    id: '00000000-0000-4000-8000-000000000001',
    name: 'remote',
    version: '1',
    kind: 'REMOTE',
    task: 'TENSOR',
    endpoint,
    remoteName: 'doubler',
    remoteProtocol: 'OPEN_INFERENCE_V2',
    defaultParameters: {},
    ...overrides,
  } as ModelEntity;
}

const PARAMETERS: EffectiveParameters = {
  temperature: 0.7,
  top_k: 40,
  top_p: 0.95,
  max_tokens: 256,
  seed: undefined,
  server_load: 0.2,
};
const TENSOR_INPUT = {
  task: 'TENSOR',
  tensors: { x: { type: 'float32', dims: [1, 3], data: Float32Array.from([1, 2, 3]) } },
} as const;

const open = (m: ModelEntity, settings: Partial<RemoteSettings> = {}) =>
  createRemoteOpener(
    { remoteTimeoutMs: 1_000, remoteRetries: 0, ...settings },
    createLogger('silent'),
  )(m);

/** Answers metadata, and hands `/infer` to `infer`. */
const oipServer = (infer: Handler, seen: IncomingMessage[] = []) =>
  serve((req, res, body) => {
    seen.push(req);
    if (req.method === 'GET' && req.url === '/v2/models/doubler') {
      json(res, 200, METADATA);
    } else {
      infer(req, res, body);
    }
  });

describe('the remote backend', () => {
  describe('Open Inference Protocol v2', () => {
    it('reads specs from the metadata and sends tensors in OIP form with the effective parameters', async () => {
      let sent: any;
      const endpoint = await oipServer((_req, res, body) => {
        sent = JSON.parse(body);
        json(res, 200, {
          outputs: [{ name: 'y', shape: [1, 3], datatype: 'FP32', data: [2, 4, 6] }],
        });
      });
      const handle = await open(model(endpoint));
      expect(handle.executionProvider).toBe('remote');
      expect(handle.inputs).toEqual([{ name: 'x', type: 'float32', dims: [-1, 3] }]);
      const result = await handle.infer(TENSOR_INPUT, PARAMETERS);
      expect(sent.inputs).toEqual([
        { name: 'x', shape: [1, 3], datatype: 'FP32', data: [1, 2, 3] },
      ]);
      expect(typeof sent.id).toBe('string');
      // Undefined values are dropped, and this replica's measured load is no request.
      expect(sent.parameters).toEqual({
        temperature: 0.7,
        top_k: 40,
        top_p: 0.95,
        max_tokens: 256,
      });
      expect(result).toEqual({
        output: { y: { shape: [1, 3], datatype: 'float32', data: [2, 4, 6] } },
        batchSize: 1,
      });
    });

    it('sends text as one BYTES input and reads output_json, or scores with the labels', async () => {
      const answers = [
        {
          outputs: [
            { name: 'output_json', shape: [1], datatype: 'BYTES', data: ['{"label":"x"}'] },
          ],
        },
        { outputs: [{ name: 'probabilities', shape: [1, 2], datatype: 'FP32', data: [0.1, 0.9] }] },
      ];
      const sent: any[] = [];
      const endpoint = await oipServer((_req, res, body) => {
        sent.push(JSON.parse(body));
        json(res, 200, answers[sent.length - 1]);
      });
      const handle = await open(
        model(endpoint, {
          task: 'TEXT_CLASSIFICATION' as ModelEntity['task'],
          defaultParameters: { labels: ['negative', 'positive'] },
        }),
      );
      const input = { task: 'TEXT_CLASSIFICATION', text: 'hello' } as const;
      expect((await handle.infer(input, PARAMETERS)).output).toEqual({ label: 'x' });
      expect(sent[0].inputs).toEqual([
        { name: 'text', shape: [1], datatype: 'BYTES', data: ['hello'] },
      ]);
      expect((await handle.infer(input, PARAMETERS)).output).toEqual({
        label: 'positive',
        scores: { negative: 0.1, positive: 0.9 },
      });
    });

    it('is unavailable when the metadata route answers an error', async () => {
      const endpoint = await serve((_req, res) => json(res, 404, { error: 'no such model' }));
      await expect(open(model(endpoint))).rejects.toThrow(ModelUnavailableError);
    });

    it('reads an error answer as the model failing, with the remote message cut to 200 characters, and does not retry it', async () => {
      let calls = 0;
      const endpoint = await oipServer((_req, res) => {
        calls++;
        json(res, 400, { error: `bad shape ${'!'.repeat(500)}` });
      });
      const handle = await open(model(endpoint), { remoteRetries: 3 });
      const error = await handle.infer(TENSOR_INPUT, PARAMETERS).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InferenceError);
      expect((error as Error).message).toMatch(/^bad shape !+$/);
      expect((error as Error).message).toHaveLength(200);
      expect(calls).toBe(1);
    });

    it('reads 503 from the remote as unavailable rather than as a failed input', async () => {
      const endpoint = await oipServer((_req, res) => json(res, 503, { error: 'warming up' }));
      const handle = await open(model(endpoint));
      await expect(handle.infer(TENSOR_INPUT, PARAMETERS)).rejects.toThrow(ModelUnavailableError);
    });
  });

  describe('TF Serving v1', () => {
    it('sends rows as instances and builds a tensor from the predictions', async () => {
      let sent: any;
      const endpoint = await serve((req, res, body) => {
        if (req.url === '/v1/models/doubler') {
          json(res, 200, { model_version_status: [{ version: '1', state: 'AVAILABLE' }] });
        } else if (req.url === '/v1/models/doubler:predict') {
          sent = JSON.parse(body);
          json(res, 200, { predictions: [[2, 4, 6]] });
        } else {
          json(res, 404, { error: 'not found' });
        }
      });
      const handle = await open(
        model(endpoint, { remoteProtocol: 'TFSERVING_V1' as ModelEntity['remoteProtocol'] }),
      );
      expect(handle.inputs).toEqual([]);
      const result = await handle.infer(TENSOR_INPUT, PARAMETERS);
      expect(sent).toEqual({ instances: [[1, 2, 3]] });
      expect(result.output).toEqual({
        predictions: { shape: [1, 3], datatype: 'float32', data: [2, 4, 6] },
      });
    });

    it('is unavailable when no version of the model is AVAILABLE', async () => {
      const endpoint = await serve((_req, res) =>
        json(res, 200, { model_version_status: [{ version: '1', state: 'LOADING' }] }),
      );
      await expect(
        open(model(endpoint, { remoteProtocol: 'TFSERVING_V1' as ModelEntity['remoteProtocol'] })),
      ).rejects.toThrow(/no AVAILABLE version/);
    });
  });

  describe('timeouts and retries', () => {
    it('gives up on a server slower than the timeout, quickly and without retrying', async () => {
      let calls = 0;
      const endpoint = await oipServer((_req, res) => {
        calls++;
        setTimeout(() => json(res, 200, { outputs: [] }), 2_000);
      });
      const handle = await open(model(endpoint), { remoteTimeoutMs: 200, remoteRetries: 2 });
      const started = Date.now();
      await expect(handle.infer(TENSOR_INPUT, PARAMETERS)).rejects.toThrow(
        /did not answer within 200 ms/,
      );
      expect(Date.now() - started).toBeLessThan(1_500);
      expect(calls).toBe(1);
    });

    it('retries dropped connections and succeeds when the server recovers in time', async () => {
      let calls = 0;
      const endpoint = await oipServer((req, res) => {
        calls++;
        if (calls <= 2) {
          req.socket.destroy();
          return;
        }
        json(res, 200, {
          outputs: [{ name: 'y', shape: [1, 3], datatype: 'FP32', data: [2, 4, 6] }],
        });
      });
      const handle = await open(model(endpoint), { remoteRetries: 2 });
      expect((await handle.infer(TENSOR_INPUT, PARAMETERS)).output).toMatchObject({
        y: { data: [2, 4, 6] },
      });
      expect(calls).toBe(3);
    });

    it('is unavailable once the retries are spent on dropped connections', async () => {
      let calls = 0;
      const endpoint = await oipServer((req) => {
        calls++;
        req.socket.destroy();
      });
      const handle = await open(model(endpoint), { remoteRetries: 1 });
      await expect(handle.infer(TENSOR_INPUT, PARAMETERS)).rejects.toThrow(ModelUnavailableError);
      expect(calls).toBe(2);
    });

    it('is unavailable when nothing listens at the endpoint', async () => {
      const port = await findFreePort();
      const started = Date.now();
      await expect(open(model(`http://127.0.0.1:${port}`), { remoteRetries: 2 })).rejects.toThrow(
        /cannot be reached/,
      );
      expect(Date.now() - started).toBeLessThan(2_000);
    });
  });

  describe('credentials', () => {
    it("sends the Authorization header configured for the endpoint's origin, and only there", async () => {
      const seen: IncomingMessage[] = [];
      const endpoint = await oipServer(() => undefined, seen);
      await open(model(endpoint), { authorization: { [endpoint]: 'Bearer secret' } });
      await open(model(endpoint), { authorization: { 'http://elsewhere:1': 'Bearer other' } });
      expect(seen.map((r) => r.headers.authorization)).toEqual(['Bearer secret', undefined]);
    });

    it('parses REMOTE_AUTHORIZATION into origins, and refuses malformed values without echoing them', () => {
      expect(parseRemoteAuthorization(undefined)).toEqual({});
      expect(parseRemoteAuthorization('  ')).toEqual({});
      expect(
        parseRemoteAuthorization('{"https://kserve.internal/":"Bearer a","http://h:81":"Basic b"}'),
      ).toEqual({ 'https://kserve.internal': 'Bearer a', 'http://h:81': 'Basic b' });
      for (const bad of [
        '{"Bearer hunter2"',
        '["Bearer hunter2"]',
        '{"not a url":"Bearer hunter2"}',
      ]) {
        expect(() => parseRemoteAuthorization(bad)).toThrow(/REMOTE_AUTHORIZATION/);
        expect(() => parseRemoteAuthorization(bad)).not.toThrow(/hunter2/);
      }
      expect(() => parseRemoteAuthorization('{"https://h":42}')).toThrow(/one-line string/);
    });
  });
});
