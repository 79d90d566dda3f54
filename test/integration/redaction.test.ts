import { Writable } from 'node:stream';
import { format } from 'node:util';
import { createClient as createWsClient } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { WebSocket } from 'ws';
import { loadConfig } from '../../src/config/env';
import { createLogger } from '../../src/ops/logger';
import { startApp, type RunningApp } from '../../src/server/app';
import { createTestDatabase } from '../support/database';
import { type GraphQLResponse } from '../support/graphql-client';
import { ADMIN_PASSWORD, ENCRYPTION_KEYS, JWT_SECRET } from '../support/test-app';

/**
 * A full flow at LOG_LEVEL trace — logins, a user, a context with personal sections, an
 * update, inference over GraphQL, OIP and a subscription, a refused token, unexpected errors —
 * with every log line captured (the logger's stream, and console/stdout/stderr for anything
 * that bypasses it). None of the secrets or personal values the flow sent may appear there,
 * and no error message a client receives may hold a password or SQL.
 */

const MARK = {
  userPassword: 'user-Pa55word-redact-6b1f',
  wrongPassword: 'wrong-Pa55word-redact-92cd',
  failedUserPassword: 'failed-Pa55word-redact-c3d8',
  preference: 'pref-marker-3c9e',
  preference2: 'pref-marker-77aa',
  demographic: 'demo-marker-5d21',
  demographic2: 'demo-marker-e80b',
  custom: 'custom-marker-a0b4',
  custom2: 'custom-marker-41f9',
  sentimentInput: 'input-marker-e4f2',
  oipInput: 'oip-input-marker-6a5c',
  prompt: 'prompt-marker-19c3',
  badToken: 'bad-token-marker-0d6e',
} as const;

const SQL = /\bSELECT\b|\bINSERT\b|\bUPDATE\b|\bDELETE FROM\b|relation "/;

describe('what the server logs', () => {
  let app: RunningApp;
  const logLines: string[] = [];
  const responses: GraphQLResponse[] = [];
  const secrets: Record<string, string> = {};
  let generatedText = '';
  let unexpectedErrorId: unknown;
  let nulCode: unknown;
  let log = '';

  async function gql(
    query: string,
    variables: Record<string, unknown> = {},
    authorization?: string,
  ): Promise<GraphQLResponse> {
    const res = await fetch(app.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(authorization ? { authorization } : {}),
      },
      body: JSON.stringify({ query, variables }),
    });
    const body = (await res.json()) as Omit<GraphQLResponse, 'status'>;
    const response = { status: res.status, ...body };
    responses.push(response);
    return response;
  }

  async function login(username: string, password: string): Promise<string> {
    const res = await gql(
      'mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token } }',
      { u: username, p: password },
    );
    if (!res.data?.login) {
      throw new Error(`login failed: ${JSON.stringify(res.errors)}`);
    }
    return res.data.login.token as string;
  }

  beforeAll(async () => {
    // Anything that bypasses the logger (graphql-ws reports internal errors on console.error).
    const capture = (...args: unknown[]) => {
      logLines.push(format(...args));
    };
    for (const method of ['log', 'info', 'warn', 'error', 'debug', 'trace'] as const) {
      vi.spyOn(console, method).mockImplementation(capture);
    }
    for (const stream of [process.stdout, process.stderr]) {
      const write = stream.write.bind(stream);
      vi.spyOn(stream, 'write').mockImplementation(((chunk: unknown, ...rest: never[]) => {
        logLines.push(String(chunk));
        return write(chunk as string, ...rest);
      }) as typeof stream.write);
    }
    const sink = new Writable({
      write(chunk, _encoding, done) {
        logLines.push(String(chunk));
        done();
      },
    });
    const config = loadConfig({
      NODE_ENV: 'test',
      PORT: '0',
      HOST: '127.0.0.1',
      DATABASE_URL: await createTestDatabase(),
      REDIS_URL: inject('redisUrl'),
      JWT_SECRET,
      ENCRYPTION_KEYS,
      ADMIN_PASSWORD,
      LOG_LEVEL: 'trace',
      LOGIN_RATE_LIMIT_PER_MINUTE: '100000',
      LOGIN_IP_RATE_LIMIT_PER_MINUTE: '1000000',
      CONTEXT_SWEEP_INTERVAL_MS: '0',
    });
    app = await startApp(config, createLogger('trace', sink));

    const adminToken = await login('admin', ADMIN_PASSWORD);
    const admin = `Bearer ${adminToken}`;
    const created = await gql(
      'mutation($input: CreateUserInput!) { createUser(input: $input) { id } }',
      { input: { username: 'redacted-user', password: MARK.userPassword, role: 'USER' } },
      admin,
    );
    expect(created.errors).toBeUndefined();
    const userToken = await login('redacted-user', MARK.userPassword);
    const user = `Bearer ${userToken}`;
    const refused = await gql(
      'mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token } }',
      { u: 'redacted-user', p: MARK.wrongPassword },
    );
    expect(refused.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');

    const models = await gql('{ models { id name } }', {}, user);
    const modelId = (name: string) =>
      (models.data!.models as { id: string; name: string }[]).find((m) => m.name === name)!.id;

    const context = await gql(
      `mutation($input: CreateContextInput!) { createContext(input: $input) { id version } }`,
      {
        input: {
          model: { modelId: modelId('moby-char-trigram') },
          user: {
            preferences: { language: 'en', tone: MARK.preference },
            demographics: { region: MARK.demographic },
          },
          customAttributes: { note: MARK.custom },
        },
      },
      user,
    );
    expect(context.errors).toBeUndefined();
    const contextId = context.data!.createContext.id as string;

    // A subscriber sees the update and the history entries, so their payloads travel too.
    const ws = createWsClient({
      url: app.url.replace(/^http/, 'ws'),
      webSocketImpl: WebSocket,
      connectionParams: { authorization: user },
      retryAttempts: 0,
    });
    const seen: unknown[] = [];
    const stopWatching = ws.subscribe(
      {
        query: `subscription($c: ID!) { contextHistory(contextId: $c) { sequence input output } }`,
        variables: { c: contextId },
      },
      { next: (event) => void seen.push(event), error: () => undefined, complete: () => undefined },
    );

    const updated = await gql(
      `mutation($id: ID!, $patch: UpdateContextInput!) {
         updateContext(id: $id, patch: $patch, expectedVersion: 1) { version } }`,
      {
        id: contextId,
        patch: {
          user: {
            preferences: { language: 'en', tone: MARK.preference2 },
            demographics: { region: MARK.demographic2 },
          },
          customAttributes: { note: MARK.custom2 },
        },
      },
      user,
    );
    expect(updated.errors).toBeUndefined();

    const INFER = `mutation($m: ID!, $input: JSON!, $c: ID) {
      infer(modelId: $m, input: $input, contextId: $c) { output historyEntry { sequence } } }`;
    const sentiment = await gql(
      INFER,
      { m: modelId('sentiment-afinn'), input: `${MARK.sentimentInput} wonderful`, c: contextId },
      user,
    );
    expect(sentiment.errors).toBeUndefined();
    const generated = await gql(
      INFER,
      { m: modelId('moby-char-trigram'), input: { prompt: MARK.prompt }, c: contextId },
      user,
    );
    expect(generated.errors).toBeUndefined();
    generatedText = generated.data!.infer.output.text as string;

    const oip = await fetch(`http://127.0.0.1:${app.port}/v2/models/sentiment-afinn/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: user },
      body: JSON.stringify({
        inputs: [{ name: 'text', shape: [1], datatype: 'BYTES', data: [MARK.oipInput] }],
        parameters: { context_id: contextId },
      }),
    });
    expect(oip.status).toBe(200);
    await vi.waitFor(() => expect(seen.length).toBeGreaterThanOrEqual(3), { timeout: 10_000 });
    stopWatching();
    await ws.dispose();

    const badToken = await gql('{ contexts { totalCount } }', {}, `Bearer ${MARK.badToken}`);
    expect(badToken.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    const badWs = await new Promise<number>((resolve) => {
      const socket = new WebSocket(app.url.replace(/^http/, 'ws'), 'graphql-transport-ws');
      socket.on('open', () =>
        socket.send(
          JSON.stringify({
            type: 'connection_init',
            payload: { authorization: `Bearer ${MARK.badToken}` },
          }),
        ),
      );
      socket.on('close', (code) => resolve(code));
    });
    expect(badWs).toBe(4401);

    // Inputs that once failed inside the driver (a cursor Postgres cannot read, U+0000 in a
    // text column next to a fresh password hash) are now refused before any SQL.
    const cursor = Buffer.from(JSON.stringify(['1', '00000000-0000-4000-8000-000000000000']));
    const broken = await gql(
      'query($a: String) { contexts(after: $a) { totalCount } }',
      { a: cursor.toString('base64url') },
      user,
    );
    unexpectedErrorId = broken.errors?.[0]?.extensions?.code;
    nulCode = (
      await gql(
        'mutation($input: CreateUserInput!) { createUser(input: $input) { id } }',
        {
          input: {
            username: 'nul-full-name',
            password: MARK.failedUserPassword,
            fullName: 'a\u0000b',
          },
        },
        admin,
      )
    ).errors?.[0]?.extensions?.code;

    Object.assign(secrets, {
      'admin password': ADMIN_PASSWORD,
      'user password': MARK.userPassword,
      'wrong password': MARK.wrongPassword,
      'password of a user whose INSERT failed': MARK.failedUserPassword,
      'admin JWT': adminToken,
      'admin JWT signature': adminToken.split('.')[2]!,
      'user JWT': userToken,
      'user JWT signature': userToken.split('.')[2]!,
      'Authorization header': user,
      'refused token': MARK.badToken,
      preferences: MARK.preference,
      'updated preferences': MARK.preference2,
      demographics: MARK.demographic,
      'updated demographics': MARK.demographic2,
      customAttributes: MARK.custom,
      'updated customAttributes': MARK.custom2,
      'sentiment input': MARK.sentimentInput,
      'OIP input': MARK.oipInput,
      'generation prompt': MARK.prompt,
      'generated text': generatedText,
    });
    // Give asynchronous log writes (request-completed lines) a moment to land.
    await new Promise((resolve) => setTimeout(resolve, 200));
    log = logLines.join('\n');
  });
  afterAll(async () => {
    await app?.stop();
    vi.restoreAllMocks();
  });

  const leaked = (names: readonly string[]) => names.filter((name) => log.includes(secrets[name]!));

  it('captures the whole flow at trace level', () => {
    const lines = logLines.filter((l) => l.startsWith('{'));
    expect(lines.length).toBeGreaterThan(15);
    expect(log).toContain('/v2/models/sentiment-afinn/infer');
    expect(generatedText.length).toBeGreaterThan(20);
  });

  it('never logs a password, nor a password hash', () => {
    expect(
      leaked([
        'admin password',
        'user password',
        'wrong password',
        'password of a user whose INSERT failed',
      ]),
    ).toEqual([]);
    expect(log.match(/scrypt\$[\w$-]+/g) ?? []).toEqual([]);
  });

  it('never logs a token or the Authorization header', () => {
    expect(
      leaked([
        'admin JWT',
        'admin JWT signature',
        'user JWT',
        'user JWT signature',
        'Authorization header',
        'refused token',
      ]),
    ).toEqual([]);
  });

  it('never logs preferences, demographics or customAttributes', () => {
    expect(
      leaked([
        'preferences',
        'updated preferences',
        'demographics',
        'updated demographics',
        'customAttributes',
        'updated customAttributes',
      ]),
    ).toEqual([]);
  });

  it('never logs inference inputs or generated output', () => {
    expect(leaked(['sentiment input', 'OIP input', 'generation prompt', 'generated text'])).toEqual(
      [],
    );
  });

  it('refuses a forged cursor and a NUL character with BAD_USER_INPUT before any SQL runs', () => {
    expect(unexpectedErrorId).toBe('BAD_USER_INPUT');
    expect(nulCode).toBe('BAD_USER_INPUT');
  });

  it('answers with error messages that hold no password and no SQL', () => {
    const messages = responses.flatMap((r) => (r.errors ?? []).map((e) => e.message));
    expect(messages.length).toBeGreaterThanOrEqual(4);
    const passwords = [
      ADMIN_PASSWORD,
      MARK.userPassword,
      MARK.wrongPassword,
      MARK.failedUserPassword,
    ];
    expect(messages.filter((m) => passwords.some((p) => m.includes(p)) || SQL.test(m))).toEqual([]);
  });
});
