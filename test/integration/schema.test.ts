import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { buildSchema, findBreakingChanges } from 'graphql';
import { describe, expect, it } from 'vitest';
import { emitSchema } from '../../scripts/emit-schema';

const root = path.resolve(__dirname, '..', '..');
const CONTRACT = path.resolve(root, '..', 'shared', 'api', 'contract.graphql');

describe('schema.graphql', () => {
  it('is exactly what the code generates (run `npm run schema` after changing types)', async () => {
    const committed = readFileSync(path.join(root, 'schema.graphql'), 'utf8');
    expect(await emitSchema()).toBe(committed);
  });

  it('is a compatible superset of the public contract', () => {
    expect(existsSync(CONTRACT), `contract not found at ${CONTRACT}`).toBe(true);
    const contract = buildSchema(readFileSync(CONTRACT, 'utf8'));
    const ours = buildSchema(readFileSync(path.join(root, 'schema.graphql'), 'utf8'));
    expect(findBreakingChanges(contract, ours)).toEqual([]);
  });
});
