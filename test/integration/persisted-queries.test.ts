import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../../src/graphql/persisted-queries';
import { LOGIN_OPERATION, startTestApp, type TestApp } from '../support/test-app';

async function post(url: string, body: unknown, token?: string) {
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
}

const persisted = (hash: string) => ({ persistedQuery: { version: 1, sha256Hash: hash } });

describe('automatic persisted queries', () => {
  let a: TestApp;
  let b: TestApp;
  beforeAll(async () => {
    a = await startTestApp();
    b = await startTestApp({ env: { DATABASE_URL: a.databaseUrl } });
  });
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
  });

  it('answers an unknown hash with PERSISTED_QUERY_NOT_FOUND, then serves it once registered, on every replica', async () => {
    // A fresh text per run, so the hash is unknown to the shared Redis.
    const query = `{ me { username } __typename }\n# ${Date.now()}`;
    const hash = sha256(query);
    const miss = await post(a.app.url, { extensions: persisted(hash) }, a.adminToken);
    expect(miss.body.errors[0].extensions.code).toBe('PERSISTED_QUERY_NOT_FOUND');

    const registered = await post(a.app.url, { query, extensions: persisted(hash) }, a.adminToken);
    expect(registered.body.data.me.username).toBe('admin');

    const onB = await post(b.app.url, { extensions: persisted(hash) }, b.adminToken);
    expect(onB.body.data.me.username).toBe('admin');
  });

  it('refuses a query whose hash does not match', async () => {
    const res = await post(
      a.app.url,
      { query: '{ me { id } }', extensions: persisted(sha256('{ other }')) },
      a.adminToken,
    );
    expect(res.status).toBe(400);
    expect(res.body.errors[0].extensions.code).toBeDefined();
  });
});

describe('trusted documents (GRAPHQL_PERSISTED_ONLY)', () => {
  let t: TestApp;
  let dir: string;
  const allowed = 'query Me { me { username role } }';

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'pq-'));
    const file = path.join(dir, 'manifest.json');
    const login = LOGIN_OPERATION;
    await writeFile(
      file,
      JSON.stringify({
        format: 'apollo-persisted-query-manifest',
        version: 1,
        operations: [allowed, login].map((body) => ({
          id: sha256(body),
          body,
          name: 'op',
          type: 'query',
        })),
      }),
    );
    t = await startTestApp({
      env: { GRAPHQL_PERSISTED_ONLY: 'true', PERSISTED_QUERIES_FILE: file },
    });
  });
  afterAll(async () => {
    await t?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('runs listed operations by text or by hash alone, and refuses every other one', async () => {
    expect((await post(t.app.url, { query: allowed }, t.adminToken)).body.data.me.role).toBe(
      'ADMIN',
    );
    expect(
      (await post(t.app.url, { extensions: persisted(sha256(allowed)) }, t.adminToken)).body.data.me
        .role,
    ).toBe('ADMIN');
    const other = await post(t.app.url, { query: '{ users { totalCount } }' }, t.adminToken);
    expect(other.status).toBe(400);
    expect(other.body.errors[0].extensions.code).toBe('PERSISTED_QUERY_NOT_ALLOWED');
  });

  it('refuses a manifest entry whose id is not the hash of its body', async () => {
    const file = path.join(dir, 'forged.json');
    await writeFile(file, JSON.stringify({ [sha256('{ a }')]: '{ users { totalCount } }' }));
    await expect(
      startTestApp({ env: { GRAPHQL_PERSISTED_ONLY: 'true', PERSISTED_QUERIES_FILE: file } }),
    ).rejects.toThrow('does not match');
  });
});
