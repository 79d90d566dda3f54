import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codes, type GraphQLResponse } from '../support/graphql-client';
import { startTestApp, type TestApp } from '../support/test-app';

const CONTEXTS = '{ contexts(first: 1) { edges { node { id } } } }';
const ME = '{ me { username role } }';
const DISABLE =
  'mutation($id: ID!, $d: Boolean!) { setUserDisabled(id: $id, disabled: $d) { id } }';
const SET_ROLE = 'mutation($id: ID!, $role: Role!) { setUserRole(id: $id, role: $role) { id } }';
const INFER = 'mutation($m: ID!) { infer(modelId: $m, input: "a fine day") { output } }';

/**
 * Well under ROW_CACHE_TTL_MS (30 s): a change seen sooner came by pub/sub, not by a copy
 * expiring.
 */
const PROPAGATION_MS = 3_000;

/** Polls until `check` holds or PROPAGATION_MS passes; returns the last response. */
async function soon<T>(
  read: () => Promise<GraphQLResponse<T>>,
  check: (res: GraphQLResponse<T>) => boolean,
): Promise<GraphQLResponse<T>> {
  const deadline = Date.now() + PROPAGATION_MS;
  for (;;) {
    const res = await read();
    if (check(res) || Date.now() > deadline) {
      return res;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("each replica's copies of user and model rows", () => {
  let a: TestApp;
  let b: TestApp;

  beforeAll(async () => {
    a = await startTestApp();
    b = await startTestApp({ databaseUrl: a.databaseUrl });
  });
  afterAll(async () => {
    await b?.stop();
    await a?.stop();
  });

  const userRowHits = async (t: TestApp) =>
    (await t.app.metrics.rowCache.get()).values
      .filter((v) => v.labels.table === 'users' && v.labels.result === 'hit')
      .reduce((n, v) => n + v.value, 0);

  it('serves the caller from the copy instead of reading the row on every request', async () => {
    const user = await a.createUser('copy-reader');
    await b.gql(ME, {}, user.token);
    const before = await userRowHits(b);
    const res = await b.gql(ME, {}, user.token);
    expect(res.data).toEqual({ me: { username: 'copy-reader', role: 'USER' } });
    expect(await userRowHits(b)).toBeGreaterThan(before);
  });

  it('refuses a user disabled on one replica on the others too, and takes them back when enabled', async () => {
    const user = await a.createUser('disabled-elsewhere');
    expect((await b.gql(CONTEXTS, {}, user.token)).errors).toBeUndefined();

    await a.gql(DISABLE, { id: user.id, d: true }, a.adminToken);
    const refused = await soon(
      () => b.gql(CONTEXTS, {}, user.token),
      (res) => codes(res).includes('UNAUTHENTICATED'),
    );
    expect(codes(refused)).toEqual(['UNAUTHENTICATED']);
    expect(refused.errors![0]!.message).toBe('User disabled');
    // The replica that made the change refuses at once, without waiting for any message.
    expect(codes(await a.gql(CONTEXTS, {}, user.token))).toEqual(['UNAUTHENTICATED']);

    await a.gql(DISABLE, { id: user.id, d: false }, a.adminToken);
    const back = await soon(
      () => b.gql(CONTEXTS, {}, user.token),
      (res) => res.errors === undefined,
    );
    expect(back.errors).toBeUndefined();
  });

  it("applies a role change made on one replica to the caller's requests on another", async () => {
    const user = await a.createUser('promoted-elsewhere');
    expect((await b.gql(ME, {}, user.token)).data).toEqual({
      me: { username: 'promoted-elsewhere', role: 'USER' },
    });

    await a.gql(SET_ROLE, { id: user.id, role: 'MODEL_DEVELOPER' }, a.adminToken);
    const seen = await soon(
      () => b.gql<{ me: { role: string } }>(ME, {}, user.token),
      (res) => res.data?.me.role === 'MODEL_DEVELOPER',
    );
    expect(seen.data?.me.role).toBe('MODEL_DEVELOPER');
  });

  it('stops inference on a model deleted on another replica', async () => {
    const user = await a.createUser('infers-elsewhere');
    const { data } = await a.gql<{ models: { id: string; name: string }[] }>(
      '{ models { id name } }',
      {},
      a.adminToken,
    );
    const sentiment = data!.models.find((m) => m.name === 'sentiment-afinn')!;
    expect((await b.gql(INFER, { m: sentiment.id }, user.token)).errors).toBeUndefined();

    const deleted = await a.gql(
      'mutation($id: ID!) { deleteModel(id: $id) }',
      {
        id: sentiment.id,
      },
      a.adminToken,
    );
    expect(deleted.errors).toBeUndefined();
    const refused = await soon(
      () => b.gql(INFER, { m: sentiment.id }, user.token),
      (res) => codes(res).includes('NOT_FOUND'),
    );
    expect(codes(refused)).toEqual(['NOT_FOUND']);
    expect(b.app.services.registry.ready.has(sentiment.id)).toBe(false);
  });
});
