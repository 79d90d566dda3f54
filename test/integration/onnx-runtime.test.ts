import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOnnxRuntime, type ModelRuntime } from '../../src/inference/onnx/onnx-pool';
import { createLogger } from '../../src/ops/logger';
import { doublerModel } from '../support/tiny-onnx';

const feeds = { x: { type: 'float32' as const, dims: [1, 3], data: Float32Array.from([1, 2, 3]) } };

describe('the onnxruntime worker pool', () => {
  let dir: string;
  let runtime: ModelRuntime;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'onnx-runtime-'));
    await writeFile(path.join(dir, 'a.onnx'), doublerModel());
    await writeFile(path.join(dir, 'b.onnx'), doublerModel());
    runtime = createOnnxRuntime({
      workers: 1,
      device: 'cpu',
      intraOpThreads: 1,
      logger: createLogger('silent'),
    });
  });
  afterAll(async () => {
    await runtime?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('loads a file once for every model registered from it, and frees it with the last one', async () => {
    await runtime.load('model-1', path.join(dir, 'a.onnx'));
    await runtime.load('model-2', path.join(dir, 'a.onnx'));
    await runtime.load('model-3', path.join(dir, 'b.onnx'));
    expect(runtime.sessions).toBe(2);

    await runtime.release('model-1');
    expect(runtime.sessions).toBe(2);
    const out = await runtime.run('model-2', feeds);
    expect(Array.from(out.y!.data as Float32Array)).toEqual([2, 4, 6]);

    await runtime.release('model-2');
    expect(runtime.sessions).toBe(1);
    await expect(runtime.run('model-2', feeds)).rejects.toThrow('not loaded');
    await runtime.release('model-3');
    expect(runtime.sessions).toBe(0);
  });

  it('loads a file again once it has changed on disk', async () => {
    const file = path.join(dir, 'changing.onnx');
    await writeFile(file, doublerModel());
    await runtime.load('before', file);
    await new Promise((resolve) => setTimeout(resolve, 20));
    await writeFile(file, doublerModel());
    await runtime.load('after', file);
    expect(runtime.sessions).toBe(2);
    await runtime.release('before');
    await runtime.release('after');
  });
});
