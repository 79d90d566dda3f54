import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codes, type GraphQLResponse } from '../support/graphql-client';
import { ADMIN_PASSWORD, startTestApp, type TestApp } from '../support/test-app';

const LOGIN =
  'mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token expiresAt user { username role } } }';
const CREATE =
  'mutation($input: CreateUserInput!) { createUser(input: $input) { id username role email } }';
const COUNT = '{ users { totalCount } }';

describe('users and login', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(async () => {
    await t?.stop();
  });

  const userCount = async () =>
    (await t.gql(COUNT, {}, t.adminToken)).data!.users.totalCount as number;

  it('logs the bootstrap admin in with a token that expires in the future', async () => {
    const res = await t.gql(LOGIN, { u: 'ADMIN', p: ADMIN_PASSWORD });
    expect(res.errors).toBeUndefined();
    expect(res.data!.login.user).toEqual({ username: 'admin', role: 'ADMIN' });
    expect(Date.parse(res.data!.login.expiresAt)).toBeGreaterThan(Date.now());
    const me = await t.gql('{ me { username role } }', {}, res.data!.login.token);
    expect(me.data!.me).toEqual({ username: 'admin', role: 'ADMIN' });
  });

  it.each([
    ['an empty username', '', 'x', 'BAD_USER_INPUT'],
    ['an empty password', 'admin', '', 'BAD_USER_INPUT'],
    ['a username over 64 characters', 'a'.repeat(65), 'password', 'BAD_USER_INPUT'],
    ['a password over 256 characters', 'admin', 'p'.repeat(257), 'BAD_USER_INPUT'],
    ['a wrong password', 'admin', 'wrong password', 'UNAUTHENTICATED'],
    ['an unknown username', 'nobody', 'whatever1', 'UNAUTHENTICATED'],
  ])('refuses a login with %s', async (_case, u, p, code) => {
    const res = await t.gql(LOGIN, { u, p });
    expect(codes(res)).toEqual([code]);
    expect(res.data).toBeNull();
  });

  it('answers me with null for anonymous callers and UNAUTHENTICATED for a bad token', async () => {
    expect((await t.gql('{ me { id } }')).data).toEqual({ me: null });
    const res = await t.gql('{ users { totalCount } }', {}, 'not-a-jwt');
    expect(codes(res)).toEqual(['UNAUTHENTICATED']);
    expect(res.errors![0]!.message).toBe('Invalid token');
  });

  it('lets an admin create a user who can then log in as a USER', async () => {
    const res = await t.gql(
      CREATE,
      { input: { username: 'grace', password: 'grace-password', email: 'grace@example.com' } },
      t.adminToken,
    );
    expect(res.data!.createUser).toMatchObject({
      username: 'grace',
      role: 'USER',
      email: 'grace@example.com',
    });
    const token = await t.login('grace', 'grace-password');
    expect((await t.gql('{ me { username role } }', {}, token)).data!.me).toEqual({
      username: 'grace',
      role: 'USER',
    });
  });

  it('refuses a duplicate username, compared case-insensitively, and writes nothing', async () => {
    await t.gql(CREATE, { input: { username: 'Linus', password: 'linus-password' } }, t.adminToken);
    const before = await userCount();
    const res = await t.gql(
      CREATE,
      { input: { username: 'linus', password: 'other-password' } },
      t.adminToken,
    );
    expect(codes(res)).toEqual(['CONFLICT']);
    expect(await userCount()).toBe(before);
  });

  it.each([
    ['a short username', { username: 'ab', password: 'long-enough' }],
    ['a username with spaces', { username: 'a b c', password: 'long-enough' }],
    ['a short password', { username: 'shorty', password: 'short' }],
    ['a malformed email', { username: 'mailer', password: 'long-enough', email: 'not-an-email' }],
    ['an unknown role', { username: 'roley', password: 'long-enough', role: 'ROOT' }],
  ])('refuses to create a user with %s and writes nothing', async (_case, input) => {
    const before = await userCount();
    const res = await t.gql(CREATE, { input }, t.adminToken);
    expect(codes(res)).toEqual(['BAD_USER_INPUT']);
    expect(JSON.stringify(res)).not.toContain('long-enough');
    expect(await userCount()).toBe(before);
  });

  it('allows only admins to create users', async () => {
    const { token } = await t.createUser('plain-user');
    const input = { username: 'sneaky', password: 'sneaky-password' };
    expect(codes(await t.gql(CREATE, { input }))).toEqual(['UNAUTHENTICATED']);
    expect(codes(await t.gql(CREATE, { input }, token))).toEqual(['FORBIDDEN']);
  });

  it("stops a disabled user's tokens at once and refuses their login; re-enabling restores both", async () => {
    const { id, token } = await t.createUser('to-disable');
    const SET =
      'mutation($id: ID!, $d: Boolean!) { setUserDisabled(id: $id, disabled: $d) { disabled } }';
    expect((await t.gql(SET, { id, d: true }, t.adminToken)).data!.setUserDisabled.disabled).toBe(
      true,
    );

    const me = await t.gql('{ users { totalCount } }', {}, token);
    expect(codes(me)).toEqual(['UNAUTHENTICATED']);
    expect(me.errors![0]!.message).toBe('User disabled');
    expect(codes(await t.gql(LOGIN, { u: 'to-disable', p: 'to-disable-password' }))).toEqual([
      'FORBIDDEN',
    ]);

    await t.gql(SET, { id, d: false }, t.adminToken);
    expect((await t.gql('{ me { username } }', {}, token)).data!.me.username).toBe('to-disable');
  });

  it('refuses setUserDisabled for a malformed or unknown id, or for oneself', async () => {
    const SET = 'mutation($id: ID!) { setUserDisabled(id: $id, disabled: true) { id } }';
    expect(codes(await t.gql(SET, { id: 'nope' }, t.adminToken))).toEqual(['BAD_USER_INPUT']);
    expect(
      codes(await t.gql(SET, { id: '00000000-0000-4000-8000-000000000000' }, t.adminToken)),
    ).toEqual(['NOT_FOUND']);
    const me = (await t.gql('{ me { id } }', {}, t.adminToken)).data!.me.id as string;
    expect(codes(await t.gql(SET, { id: me }, t.adminToken))).toEqual(['BAD_USER_INPUT']);
  });

  it('shows a user to themselves and admins, and FORBIDDEN to others', async () => {
    const a = await t.createUser('reader-a');
    const b = await t.createUser('reader-b');
    const Q = 'query($id: ID!) { user(id: $id) { username } }';
    expect((await t.gql(Q, { id: a.id }, a.token)).data!.user.username).toBe('reader-a');
    expect((await t.gql(Q, { id: a.id }, t.adminToken)).data!.user.username).toBe('reader-a');
    expect(codes(await t.gql(Q, { id: a.id }, b.token))).toEqual(['FORBIDDEN']);
    expect(codes(await t.gql('{ users { totalCount } }', {}, b.token))).toEqual(['FORBIDDEN']);
  });

  it('pages through users with opaque keyset cursors, each user exactly once', async () => {
    for (let i = 0; i < 5; i++) {
      await t.createUser(`pager-${i}`);
    }
    const total = await userCount();
    const seen: string[] = [];
    let after: string | null = null;
    for (;;) {
      const res: GraphQLResponse = await t.gql(
        'query($after: String) { users(first: 2, after: $after) { edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }',
        { after },
        t.adminToken,
      );
      const page = res.data!.users as {
        edges: { node: { id: string } }[];
        pageInfo: { hasNextPage: boolean; endCursor: string };
      };
      seen.push(...page.edges.map((e) => e.node.id));
      if (!page.pageInfo.hasNextPage) {
        break;
      }
      after = page.pageInfo.endCursor;
    }
    expect(seen).toHaveLength(total);
    expect(new Set(seen).size).toBe(total);
  });

  it('refuses a page size above the maximum, a negative one and a forged cursor', async () => {
    const Q =
      'query($first: Int, $after: String) { users(first: $first, after: $after) { totalCount } }';
    expect(codes(await t.gql(Q, { first: 101 }, t.adminToken))).toEqual(['BAD_USER_INPUT']);
    expect(codes(await t.gql(Q, { first: -1 }, t.adminToken))).toEqual(['BAD_USER_INPUT']);
    const forged = Buffer.from(JSON.stringify(['yesterday', 'x'])).toString('base64url');
    expect(codes(await t.gql(Q, { after: forged }, t.adminToken))).toEqual(['BAD_USER_INPUT']);
    expect(codes(await t.gql(Q, { after: '%%%' }, t.adminToken))).toEqual(['BAD_USER_INPUT']);
  });

  it('stores only a scrypt hash of each password', async () => {
    const rows: { password_hash: string }[] = await t.app.dataSource.query(
      `SELECT password_hash FROM users WHERE username = 'grace'`,
    );
    expect(rows[0]!.password_hash).toMatch(/^scrypt\$/);
    expect(rows[0]!.password_hash).not.toContain('grace-password');
  });
});
