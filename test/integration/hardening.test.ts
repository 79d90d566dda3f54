import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codes } from '../support/graphql-client';
import { ADMIN_PASSWORD, LOGIN_OPERATION, startTestApp, type TestApp } from '../support/test-app';

describe('query limits', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({
      env: {
        GRAPHQL_MAX_DEPTH: '6',
        GRAPHQL_MAX_ALIASES: '3',
        GRAPHQL_MAX_DIRECTIVES: '2',
        GRAPHQL_MAX_TOKENS: '200',
        GRAPHQL_MAX_COST: '500',
      },
    });
  });
  afterAll(async () => {
    await t?.stop();
  });

  const limitOf = (res: Awaited<ReturnType<TestApp['gql']>>) => ({
    code: res.errors?.[0]?.extensions?.code,
    limit: res.errors?.[0]?.extensions?.limit,
  });

  it.each([
    ['depth', '{ contexts { edges { node { user { user { contexts { totalCount } } } } } } }'],
    ['aliases', '{ a: me { id } b: me { id } c: me { id } d: me { id } }'],
    ['directives', '{ me @include(if: true) { id @skip(if: false) username @include(if: true) } }'],
    ['tokens', `{ me { ${Array.from({ length: 250 }, () => 'id').join(' ')} } }`],
    [
      'cost',
      // Shallow enough for the depth limit; 100 contexts × 100 history entries is what costs.
      '{ contexts(first: 100) { edges { node { history(first: 100) { totalCount } } } } }',
    ],
  ])(
    'refuses an operation over the %s limit with QUERY_TOO_COMPLEX naming it',
    async (limit, query) => {
      const res = await t.gql(query, {}, t.adminToken);
      expect(limitOf(res)).toEqual({ code: 'QUERY_TOO_COMPLEX', limit });
      expect(res.data ?? null).toBeNull();
    },
  );

  it('runs operations within every limit', async () => {
    const res = await t.gql(
      '{ a: me { id } b: me { username } contexts(first: 5) { totalCount } }',
      {},
      t.adminToken,
    );
    expect(res.errors).toBeUndefined();
  });

  it('refuses batched HTTP requests unless configured', async () => {
    const res = await fetch(t.app.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([{ query: '{ me { id } }' }, { query: '{ me { id } }' }]),
    });
    expect(res.status).toBe(400);
  });
});

describe('login throttling', () => {
  let t: TestApp;
  beforeAll(async () => {
    // In-process counters: other test files log in as "admin" through the shared Redis.
    t = await startTestApp({
      redis: false,
      env: { LOGIN_RATE_LIMIT_PER_MINUTE: '3', LOGIN_IP_RATE_LIMIT_PER_MINUTE: '1000' },
    });
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('refuses a fourth attempt on one username within a minute with RATE_LIMITED and retryAfterSeconds', async () => {
    const { id } = await t.createUser('throttled');
    expect(id).toBeDefined();
    const attempt = () => t.gql(LOGIN_OPERATION, { u: 'throttled', p: 'wrong password' });
    const outcomes = [];
    for (let i = 0; i < 3; i++) {
      outcomes.push(codes(await attempt())[0]);
    }
    // createUser's helper logged in once already: the limit of 3 is reached within these.
    expect(outcomes).toContain('RATE_LIMITED');
    const refused = await attempt();
    expect(codes(refused)).toEqual(['RATE_LIMITED']);
    expect(refused.errors![0]!.extensions!.retryAfterSeconds).toBeGreaterThan(0);
    // Another account is not affected by the first one's attempts.
    const other = await t.gql(LOGIN_OPERATION, { u: 'admin', p: ADMIN_PASSWORD });
    expect(other.data?.login.token).toBeDefined();
  });
});

describe('HTTP headers', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ env: { CORS_ORIGINS: 'https://app.example' } });
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('sends security headers, with a strict CSP for the API and one that lets GraphiQL run', async () => {
    const api = await fetch(t.app.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"query":"{ me { id } }"}',
    });
    expect(api.headers.get('x-content-type-options')).toBe('nosniff');
    expect(api.headers.get('content-security-policy')).toContain("default-src 'none'");
    const page = await fetch(t.app.url, { headers: { accept: 'text/html' } });
    const csp = page.headers.get('content-security-policy')!;
    expect(csp).toContain("script-src 'self' 'unsafe-inline'");
    expect(csp).toContain('connect-src');
    expect(csp).not.toContain('https:');
  });

  it('allows cross-origin requests only from CORS_ORIGINS', async () => {
    const preflight = (origin: string) =>
      fetch(t.app.url, {
        method: 'OPTIONS',
        headers: {
          origin,
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'content-type,authorization',
        },
      });
    expect(
      (await preflight('https://app.example')).headers.get('access-control-allow-origin'),
    ).toBe('https://app.example');
    expect(
      (await preflight('https://evil.example')).headers.get('access-control-allow-origin'),
    ).toBeNull();
  });
});
