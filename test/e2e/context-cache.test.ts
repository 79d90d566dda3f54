import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../support/database';
import { createClient, type GqlClient } from '../support/graphql-client';
import {
  startServerProcess,
  stopAllServerProcesses,
  type ServerProcess,
} from '../support/server-process';
import { ADMIN_PASSWORD, replicaEnv } from '../support/test-app';

/** Two replicas on one PostgreSQL and one Redis: the context cache they share never serves a stale row. */

const SLOW = 120_000; // 120 s

const LOGIN = `mutation($u: String!, $p: String!) {
  login(username: $u, password: $p) { token }
}`;
const CREATE = `mutation($input: CreateContextInput!) {
  createContext(input: $input) { id version }
}`;
const UPDATE = `mutation($id: ID!, $patch: UpdateContextInput!) {
  updateContext(id: $id, patch: $patch) { id version }
}`;
const GET = `query($id: ID!) {
  context(id: $id) { id version user { preferences } customAttributes }
}`;
const DELETE = 'mutation($id: ID!) { deleteContext(id: $id) }';

describe('the context cache shared by two replicas', () => {
  let dataDir: string;
  let a: GqlClient;
  let b: GqlClient;
  let token: string;
  let modelId: string;
  const servers: ServerProcess[] = [];

  beforeAll(async () => {
    // DATA_DIR is unused with DATABASE_URL; a private one keeps a stray write out of the repo.
    dataDir = await mkdtemp(path.join(tmpdir(), 'context-server-cache-e2e-'));
    const databaseUrl = await createTestDatabase();
    const env = {
      ...replicaEnv(databaseUrl),
      DATA_DIR: dataDir,
      CONTEXT_SWEEP_INTERVAL_MS: '0',
    };
    // A first, alone: it applies the migrations the model row needs.
    servers.push(await startServerProcess({ env }));
    const pg = new Client({ connectionString: databaseUrl });
    await pg.connect();
    try {
      const { rows } = await pg.query<{ id: string }>(
        `INSERT INTO models (name, version, kind, task, path)
         VALUES ('m', '1', 'ONNX', 'TEXT_GENERATION', 'm.onnx') RETURNING id`,
      );
      modelId = rows[0]!.id;
    } finally {
      await pg.end();
    }
    servers.push(await startServerProcess({ env }));
    a = createClient(servers[0]!.url);
    b = createClient(servers[1]!.url);
    const login = await a<{ login: { token: string } }>(LOGIN, { u: 'admin', p: ADMIN_PASSWORD });
    token = login.data!.login.token;
  }, SLOW);

  afterAll(async () => {
    await stopAllServerProcesses();
    if (dataDir) {
      await rm(dataDir, { recursive: true, force: true });
    }
  }, SLOW);

  const create = async (on: GqlClient, preferences: Record<string, unknown>) => {
    const res = await on(CREATE, { input: { model: { modelId }, user: { preferences } } }, token);
    expect(res.errors).toBeUndefined();
    return res.data!.createContext.id as string;
  };
  const update = async (on: GqlClient, id: string, preferences: Record<string, unknown>) => {
    const res = await on(UPDATE, { id, patch: { user: { preferences } } }, token);
    expect(res.errors).toBeUndefined();
    return res.data!.updateContext.version as number;
  };
  const read = async (on: GqlClient, id: string) => {
    const res = await on(GET, { id }, token);
    expect(res.errors).toBeUndefined();
    return res.data!.context as { version: number; user: { preferences: unknown } } | null;
  };

  it('shows on one replica an update made on the other at once', async () => {
    const id = await create(a, { colour: 'red' });
    expect(await read(b, id)).toMatchObject({
      version: 1,
      user: { preferences: { colour: 'red' } },
    });

    expect(await update(a, id, { colour: 'green' })).toBe(2);
    expect(await read(b, id)).toMatchObject({
      version: 2,
      user: { preferences: { colour: 'green' } },
    });
  });

  it('answers null on one replica at once after the other deleted the context', async () => {
    const id = await create(a, { colour: 'blue' });
    expect(await read(b, id)).toMatchObject({ version: 1 });

    const deleted = await a(DELETE, { id }, token);
    expect(deleted.data).toEqual({ deleteContext: true });
    expect(await read(b, id)).toBeNull();
    expect(await read(a, id)).toBeNull();
  });

  it('shows on the first replica a write made on the second', async () => {
    const id = await create(a, { colour: 'amber' });
    expect(await read(a, id)).toMatchObject({ version: 1 });

    expect(await update(b, id, { colour: 'violet' })).toBe(2);
    expect(await read(a, id)).toMatchObject({
      version: 2,
      user: { preferences: { colour: 'violet' } },
    });

    const createdOnB = await create(b, { colour: 'teal' });
    expect(await read(a, createdOnB)).toMatchObject({
      version: 1,
      user: { preferences: { colour: 'teal' } },
    });
  });
});
