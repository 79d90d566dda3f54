import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FieldEncryption, parseEncryptionKeys } from '../../src/security/field-encryption';
import { ENCRYPTED_COLUMNS, rotateKeys } from '../../src/security/rotate-keys';
import { ADMIN_PASSWORD, JWT_SECRET, startTestApp, type TestApp } from '../support/test-app';

const OLD = `old1:${Buffer.alloc(32, 7).toString('base64')}`;
const NEW = `new2:${Buffer.alloc(32, 9).toString('base64')}`;

describe('key rotation', () => {
  let before: TestApp;
  let after: TestApp;
  const contextIds: string[] = [];

  beforeAll(async () => {
    // Data written while only the old key exists…
    before = await startTestApp({ env: { ENCRYPTION_KEYS: OLD, CONTEXT_SWEEP_INTERVAL_MS: '0' } });
    const models = await before.gql('{ models { id name } }', {}, before.adminToken);
    const sentiment = models.data!.models.find((m: any) => m.name === 'sentiment-afinn').id;
    for (let i = 0; i < 7; i++) {
      const res = await before.gql(
        'mutation($m: ID!, $p: JSONObject) { createContext(input: { model: { modelId: $m }, user: { preferences: $p }, customAttributes: { n: 1 } }) { id } }',
        { m: sentiment, p: { colour: `blue-${i}` } },
        before.adminToken,
      );
      const id = res.data!.createContext.id;
      contextIds.push(id);
      await before.gql(
        'mutation($m: ID!, $c: ID) { infer(modelId: $m, input: "good day", contextId: $c) { cached } }',
        { m: sentiment, c: id },
        before.adminToken,
      );
    }
    await before.stop();
    // …read by a server that has the new key first and still knows the old one.
    after = await startTestApp({
      env: {
        DATABASE_URL: before.databaseUrl,
        ENCRYPTION_KEYS: `${NEW},${OLD}`,
        CONTEXT_SWEEP_INTERVAL_MS: '0',
      },
    });
  });
  afterAll(async () => {
    await after?.stop();
  });

  const keyIds = async () => {
    const encryption = new FieldEncryption(parseEncryptionKeys(`${NEW},${OLD}`));
    const ids = new Set<string>();
    for (const { table, column } of ENCRYPTED_COLUMNS) {
      const rows: { value: Buffer }[] = await after.app.dataSource.query(
        `SELECT ${column} AS value FROM ${table}`,
      );
      rows.forEach((r) => ids.add(encryption.keyIdOf(r.value)));
    }
    return ids;
  };

  it('re-encrypts every ciphertext under the current key in batches while the server serves, and resumes to nothing', async () => {
    expect(await keyIds()).toEqual(new Set(['old1']));
    const encryption = new FieldEncryption(parseEncryptionKeys(`${NEW},${OLD}`));
    // A live write during the rotation: the row lock keeps the two from clobbering each other.
    const [rewritten] = await Promise.all([
      rotateKeys(after.app.dataSource, encryption, { batchSize: 2 }),
      after.gql(
        'mutation($id: ID!) { updateContext(id: $id, patch: { customAttributes: { n: 2 } }) { version } }',
        { id: contextIds[0] },
        after.adminToken,
      ),
    ]);
    expect(rewritten).toBeGreaterThan(0);
    expect(await keyIds()).toEqual(new Set(['new2']));
    expect(await rotateKeys(after.app.dataSource, encryption, { batchSize: 2 })).toBe(0);

    for (const [i, id] of contextIds.entries()) {
      const res = await after.gql(
        'query($id: ID!) { context(id: $id) { user { preferences } history { edges { node { input } } } } }',
        { id },
        after.adminToken,
      );
      expect(res.data!.context.user.preferences).toEqual({ colour: `blue-${i}` });
      expect(res.data!.context.history.edges[0].node.input).toBe('good day');
    }
  });

  it('runs as `rotate-keys` from the command line', async () => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', 'scripts/rotate-keys.ts'],
      {
        env: {
          PATH: process.env.PATH,
          DATABASE_URL: before.databaseUrl,
          JWT_SECRET,
          ADMIN_PASSWORD,
          ENCRYPTION_KEYS: `${NEW},${OLD}`,
          LOG_LEVEL: 'info',
        },
      },
    );
    expect(stdout).toContain('every ciphertext is under the current key');
    expect(stdout).toContain('"rewritten":0');
  });
});
