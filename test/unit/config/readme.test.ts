import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ENV_VARIABLES } from '../../../src/config/env';

describe('the README configuration table', () => {
  const readme = readFileSync(path.resolve(__dirname, '..', '..', '..', 'README.md'), 'utf8');
  const table = readme.slice(readme.indexOf('## Configuration'), readme.indexOf('## HTTP surface'));

  it.each(ENV_VARIABLES)('documents %s', (name) => {
    expect(table).toContain(`| \`${name}\``);
  });
});
