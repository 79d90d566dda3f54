import { type DataSource } from 'typeorm';

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
