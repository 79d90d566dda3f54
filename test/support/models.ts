import { cp, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type DataSource } from 'typeorm';
import { writeDoublerModel } from './tiny-onnx';

/**
 * A row in `models`, written directly: the registry API arrives with the inference work,
 * and contexts only need a model to point at.
 */
export async function insertModel(
  dataSource: DataSource,
  name = 'test-model',
  version = '1',
): Promise<string> {
  const [row] = await dataSource.query(
    `INSERT INTO models (name, version, kind, task, path, default_parameters)
     VALUES ($1, $2, 'ONNX', 'TEXT_GENERATION', 'test.onnx', '{"temperature": 0.7}') RETURNING id`,
    [name, version],
  );
  return row.id as string;
}

/**
 * A private MODEL_DIR holding copies of the shipped models (and, when asked, the tiny
 * `doubler.onnx` TENSOR model), so tests can add files without touching the repository.
 */
export async function copyShippedModels(options: { doubler?: boolean } = {}): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'models-'));
  await cp(path.resolve('models'), dir, { recursive: true });
  if (options.doubler) {
    await writeDoublerModel(path.join(dir, 'doubler.onnx'));
  }
  return dir;
}
