import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, type RawData } from 'ws';
import { startTestApp, type TestApp } from '../support/test-app';

/**
 * A deterministic fuzzer: a seeded PRNG builds a few thousand malformed GraphQL requests
 * (over HTTP) and graphql-transport-ws messages (over WebSocket) and sends them to the real
 * server in-process. Every HTTP answer must be a client error the GraphQL way — status below
 * 500, a JSON body whose `errors` each carry a string `extensions.code`, no stack trace and no
 * SQL — while /health keeps answering and no refused write reaches the database. A failure
 * prints the label of each offending request; the same seed sends the same requests again.
 */

const SEED = 0x5eed_f022;
const IN_FLIGHT = 8;
const WS_WAIT_MS = 750;

// ---------------------------------------------------------------------------- randomness

/** mulberry32: tiny, fast and good enough to pick among cases reproducibly. */
function createRandom(seed: number) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (max: number) => Math.floor(next() * max);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;
  return {
    int,
    pick,
    chance: (p: number) => next() < p,
    uuid: () => {
      const hex = Array.from({ length: 32 }, () => '0123456789abcdef'[int(16)]).join('');
      return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20)}`;
    },
  };
}
type Random = ReturnType<typeof createRandom>;

/**
 * Strings that have broken servers before. Lower-case SQL on purpose: the answers are checked
 * for upper-case SQL keywords, and an error may quote the value it refused.
 */
const HOSTILE_STRINGS = [
  '',
  ' ',
  '\t\n\r',
  'null',
  'undefined',
  'NaN',
  '-1',
  '1e309',
  "' or '1'='1",
  "'; drop table users; --",
  '"; drop table contexts; --',
  '$1',
  '%s%s%s%n',
  '../../../../etc/passwd',
  '<script>alert(1)</script>',
  '{{7*7}}',
  '${7*7}',
  '__proto__',
  'constructor',
  'a\u0000b',
  '\ud800',
  'x\udfffy',
  '\ufeff',
  '\u202eevil',
  '𝕏🏃‍♀️🏊',
  'x'.repeat(300),
  'ä'.repeat(100),
];

function randomString(r: Random): string {
  if (r.chance(0.4)) {
    return r.pick(HOSTILE_STRINGS);
  }
  const ranges: [number, number][] = [
    [0x20, 0x7e],
    [0x00, 0x1f],
    [0xa0, 0x2fff],
    [0xd800, 0xdfff],
    [0x1f300, 0x1f6ff],
  ];
  let s = '';
  for (let i = r.int(24); i >= 0; i--) {
    const [from, to] = r.pick(ranges);
    s += String.fromCodePoint(from + r.int(to - from + 1));
  }
  return s;
}

const HOSTILE_NUMBERS = [
  -1,
  0,
  1,
  -0.5,
  0.5,
  1.5,
  2 ** 31,
  -(2 ** 31) - 1,
  2 ** 53 + 1,
  1e21,
  1e300,
  -1e300,
  5e-324,
];

function randomJson(r: Random, depth = 0): unknown {
  const kinds = depth > 3 ? 4 : 6;
  switch (r.int(kinds)) {
    case 0:
      return r.pick(HOSTILE_NUMBERS);
    case 1:
      return randomString(r);
    case 2:
      return r.pick([true, false]);
    case 3:
      return null;
    case 4:
      return Array.from({ length: r.int(4) }, () => randomJson(r, depth + 1));
    default: {
      const keys = ['a', '__proto__', 'constructor', 'password', 'language', randomString(r)];
      return Object.fromEntries(
        Array.from({ length: r.int(4) }, () => [r.pick(keys), randomJson(r, depth + 1)]),
      );
    }
  }
}

/** A JSON value that is surely not an object, for arguments typed JSONObject. */
const NOT_OBJECTS: readonly unknown[] = [[1], [], [{}], ['a'], 1, 0, -1.5, 'x', '', true, false];

// ---------------------------------------------------------------------------- HTTP probes

interface Probe {
  /** Says what was sent, for the failure report. */
  readonly label: string;
  readonly body: string | Uint8Array<ArrayBuffer>;
  /** Replaces the default `content-type: application/json`; `null` sends none. */
  readonly contentType?: string | null;
  readonly token?: string;
  readonly accept?: string;
  /** Exact status expected, where the case has one. */
  readonly status?: number;
  readonly method?: 'GET' | 'POST';
  /** GET only: the query string. */
  readonly search?: string;
  readonly headers?: Readonly<Record<string, string>>;
}

interface Answer {
  readonly probe: Probe;
  readonly status: number;
  readonly contentType: string;
  readonly text: string;
}

const STACK_FRAME = /\bat (?:[\w$.<>[\]\s]+ \()?(?:\/|file:\/\/|node:)[^\s)]*:\d+/;
const JS_ERROR_PREFIX = /(?:^|["\n])(?:[A-Z][a-z]+)*Error: |\b(?:[A-Z][a-z]+)+Error: /;
const SQL = /\bSELECT\b|\bINSERT\b|\bUPDATE contexts\b|\bDELETE FROM\b|relation "/;

/** What is wrong with one answer; empty when it is a proper coded client error. */
function problemsOf(answer: Answer): string[] {
  const problems: string[] = [];
  const { probe, status, contentType, text } = answer;
  if (status >= 500) {
    problems.push(`status ${status}`);
  }
  if (probe.status !== undefined && status !== probe.status) {
    problems.push(`status ${status}, expected ${probe.status}`);
  }
  if (!/json/.test(contentType)) {
    problems.push(`content-type "${contentType}"`);
  }
  let body: { errors?: unknown } | undefined;
  try {
    body = JSON.parse(text) as { errors?: unknown };
  } catch {
    problems.push('body is not JSON');
  }
  const errors = body?.errors;
  if (!Array.isArray(errors) || errors.length === 0) {
    problems.push('no errors');
  } else if (
    !errors.every(
      (e: { extensions?: { code?: unknown } } | null) => typeof e?.extensions?.code === 'string',
    )
  ) {
    problems.push('an error without extensions.code');
  }
  if (STACK_FRAME.test(text) || text.includes('node_modules') || JS_ERROR_PREFIX.test(text)) {
    problems.push('stack trace text');
  }
  if (SQL.test(text)) {
    problems.push('SQL text');
  }
  return problems;
}

const codesOf = (answer: Answer): string[] => {
  try {
    const body = JSON.parse(answer.text) as { errors?: { extensions?: { code?: string } }[] };
    return (body.errors ?? []).map((e) => String(e.extensions?.code));
  } catch {
    return [];
  }
};

// ---------------------------------------------------------------------------- GraphQL shapes

const MUTATION_FIELDS: Readonly<Record<string, { args: Record<string, string>; select: string }>> =
  {
    createContext: { args: { input: 'CreateContextInput!' }, select: '{ id }' },
    updateContext: {
      args: { id: 'ID!', patch: 'UpdateContextInput!', expectedVersion: 'Int' },
      select: '{ id version }',
    },
    updateContexts: { args: { updates: '[ContextUpdate!]!' }, select: '{ id }' },
    deleteContext: { args: { id: 'ID!' }, select: '' },
    deleteUserData: { args: { userId: 'ID!' }, select: '{ contexts }' },
    infer: {
      args: { modelId: 'ID!', input: 'JSON!', contextId: 'ID', parameters: 'JSONObject' },
      select: '{ output }',
    },
    registerModel: { args: { input: 'RegisterModelInput!' }, select: '{ id }' },
    deleteModel: { args: { id: 'ID!' }, select: '' },
    login: { args: { username: 'String!', password: 'String!' }, select: '{ token }' },
    createUser: { args: { input: 'CreateUserInput!' }, select: '{ id }' },
    setUserDisabled: { args: { id: 'ID!', disabled: 'Boolean!' }, select: '{ id }' },
    setUserRole: { args: { id: 'ID!', role: 'Role!' }, select: '{ id }' },
  };

/** Enum values print bare in a GraphQL literal. */
class EnumValue {
  constructor(readonly name: string) {}
  toJSON() {
    return this.name;
  }
}

/** A JavaScript value as a GraphQL literal (object keys that are not Names make it unparsable, which is fine). */
function literal(value: unknown): string {
  if (value instanceof EnumValue) {
    return value.name;
  }
  if (Array.isArray(value)) {
    return `[${value.map(literal).join(', ')}]`;
  }
  if (value !== null && typeof value === 'object') {
    return `{ ${Object.entries(value)
      .map(([k, v]) => `${k}: ${literal(v)}`)
      .join(', ')} }`;
  }
  if (typeof value === 'number' && !Number.isFinite(value)) {
    return '1e999';
  }
  return JSON.stringify(value) ?? 'null';
}

/**
 * JSON text nested `levels` deep, built as text: JSON.stringify recurses and would overflow
 * the test's own stack long before the server's parser notices anything.
 */
const nestedObjectJson = (levels: number) => `${'{"a":'.repeat(levels)}"leaf"${'}'.repeat(levels)}`;
const nestedArrayJson = (levels: number) => `${'['.repeat(levels)}1${']'.repeat(levels)}`;
const RAW = '@raw@';

/** `JSON.stringify(value)` with the string RAW replaced by the JSON text `raw`. */
const jsonWith = (value: unknown, raw: string) => JSON.stringify(value).replace(`"${RAW}"`, raw);

// Context.user → UserContext.user → User.contexts → ContextConnection.edges → ContextEdge.node
const CONTEXT_CYCLE = ['user', 'user', 'contexts', 'edges', 'node'] as const;

function nestedContextSelection(levels: number): string {
  let selection = 'id';
  for (let i = levels - 1; i >= 0; i--) {
    selection = `${CONTEXT_CYCLE[i % CONTEXT_CYCLE.length]} { ${selection} }`;
  }
  return selection;
}

const cursorOf = (values: unknown) => Buffer.from(JSON.stringify(values)).toString('base64url');

// ---------------------------------------------------------------------------- WebSocket

interface WsAnswer {
  readonly label: string;
  readonly acknowledged: boolean;
  readonly close?: { readonly code: number; readonly reason: string };
  readonly messages: { type?: string; id?: string; payload?: any }[];
}

const isCoded = (errors: unknown) =>
  Array.isArray(errors) &&
  errors.length > 0 &&
  errors.every(
    (e: { extensions?: { code?: unknown } } | null) => typeof e?.extensions?.code === 'string',
  );

/** Why a WebSocket answer is not "closed with 44xx, or a coded error"; undefined when it is. */
function wsProblem(answer: WsAnswer): string | undefined {
  // 44xx: refused by the protocol; 1009: a frame over the size limit (RFC 6455).
  if (
    answer.close &&
    ((answer.close.code >= 4400 && answer.close.code <= 4499) || answer.close.code === 1009)
  ) {
    return undefined;
  }
  const answered = answer.messages.filter((m) => m.type === 'error' || m.type === 'next');
  if (answered.length > 0) {
    const errors = answered.flatMap((m) =>
      m.type === 'error' ? [m.payload] : [m.payload?.errors],
    );
    return errors.every(isCoded)
      ? undefined
      : `answered without a code: ${JSON.stringify(answered).slice(0, 300)}`;
  }
  return answer.close
    ? `closed with ${answer.close.code} "${answer.close.reason.slice(0, 120)}"`
    : 'no answer';
}

// ---------------------------------------------------------------------------- the suite

describe('the server under malformed input', () => {
  let t: TestApp;
  let base: string;
  let fuzzer: { id: string; token: string };
  let victim: { id: string; token: string };
  const modelIds: string[] = [];
  let ownContext: { id: string; version: number };
  let victimContextId: string;
  let before: Snapshot;
  const answers: Answer[] = [];
  let health: HealthWatch;

  interface Snapshot {
    readonly counts: Record<string, number>;
    readonly victimContext: unknown[];
    readonly ownContext: unknown[];
  }

  async function snapshot(): Promise<Snapshot> {
    const counts: Record<string, number> = {};
    for (const table of ['users', 'contexts', 'history_entries', 'models']) {
      const [row] = await t.app.dataSource.query(`SELECT count(*)::int AS n FROM ${table}`);
      counts[table] = row.n as number;
    }
    const rowsOf = (id: string) =>
      t.app.dataSource.query('SELECT * FROM contexts WHERE id = $1', [id]) as Promise<unknown[]>;
    return {
      counts,
      victimContext: await rowsOf(victimContextId),
      ownContext: await rowsOf(ownContext.id),
    };
  }

  interface HealthWatch {
    stop(): Promise<{ checks: number; failures: string[] }>;
  }

  /** Polls GET /health every 100 ms; a check that fails or takes over 2 s is recorded. */
  function watchHealth(): HealthWatch {
    let stopped = false;
    let checks = 0;
    const failures: string[] = [];
    const loop = (async () => {
      while (!stopped) {
        try {
          const res = await fetch(`${base}/health`, { signal: AbortSignal.timeout(2_000) });
          checks++;
          if (res.status !== 200) {
            failures.push(`GET /health answered ${res.status}`);
          }
          await res.body?.cancel();
        } catch (error) {
          failures.push(`GET /health failed: ${String(error)}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    return {
      async stop() {
        stopped = true;
        await loop;
        return { checks, failures };
      },
    };
  }

  async function send(probe: Probe): Promise<Answer> {
    const headers: Record<string, string> = { ...probe.headers };
    if (probe.contentType !== null) {
      headers['content-type'] = probe.contentType ?? 'application/json';
    }
    if (probe.token) {
      headers.authorization = `Bearer ${probe.token}`;
    }
    if (probe.accept) {
      headers.accept = probe.accept;
    }
    const url = probe.method === 'GET' ? `${t.app.url}?${probe.search ?? ''}` : t.app.url;
    const res = await fetch(url, {
      method: probe.method ?? 'POST',
      headers,
      body: probe.method === 'GET' ? undefined : probe.body,
    });
    const answer: Answer = {
      probe,
      status: res.status,
      contentType: res.headers.get('content-type') ?? '',
      text: await res.text(),
    };
    answers.push(answer);
    return answer;
  }

  /** Sends every probe, IN_FLIGHT at a time, and lists each answer that breaks a rule. */
  async function fuzz(probes: readonly Probe[]): Promise<string[]> {
    const problems: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (next < probes.length) {
          const probe = probes[next++]!;
          const answer = await send(probe);
          const found = problemsOf(answer);
          if (found.length) {
            problems.push(
              `${probe.label}: ${found.join(', ')} — HTTP ${answer.status} ${answer.text.slice(0, 200)}`,
            );
          }
        }
      }),
    );
    return problems;
  }

  const expectNoProblems = (problems: readonly string[]) =>
    expect({ count: problems.length, first: problems.slice(0, 12) }).toEqual({
      count: 0,
      first: [],
    });

  const json = (value: unknown) => JSON.stringify(value);
  const operation = (query: string, variables?: unknown) =>
    json(variables === undefined ? { query } : { query, variables });

  beforeAll(async () => {
    t = await startTestApp({ env: { CONTEXT_SWEEP_INTERVAL_MS: '0' } });
    base = `http://127.0.0.1:${t.app.port}`;
    fuzzer = await t.createUser('fuzzer');
    victim = await t.createUser('victim');
    const models = await t.gql('{ models { id name } }', {}, fuzzer.token);
    modelIds.push(...models.data!.models.map((m: { id: string }) => m.id));
    const create = async (token: string) => {
      const res = await t.gql(
        `mutation($input: CreateContextInput!) { createContext(input: $input) { id version } }`,
        {
          input: {
            model: { modelId: modelIds[0] },
            user: { preferences: { language: 'en', creativity: 'high' } },
            customAttributes: { team: 'fuzz' },
          },
        },
        token,
      );
      return res.data!.createContext as { id: string; version: number };
    };
    ownContext = await create(fuzzer.token);
    victimContextId = (await create(victim.token)).id;
    before = await snapshot();
    health = watchHealth();
  });
  afterAll(async () => {
    await health?.stop();
    await t?.stop();
  });

  // ------------------------------------------------------------------------ bodies

  it('answers broken JSON with 400 and a coded error', async () => {
    const r = createRandom(SEED + 1);
    const valid = [
      operation('{ me { id } }'),
      operation('query($id: ID!) { context(id: $id) { id } }', { id: r.uuid() }),
      json({ query: '{ __typename }', operationName: null, extensions: { a: [1, 2] } }),
    ];
    const probes: Probe[] = [];
    while (probes.length < 400) {
      let text = r.pick(valid);
      for (let edits = 1 + r.int(3); edits > 0; edits--) {
        const at = r.int(text.length);
        switch (r.int(6)) {
          case 0:
            text = text.slice(0, Math.max(1, at));
            break;
          case 1:
            text =
              text.slice(0, at) +
              r.pick(['{', '}', '[', ']', '"', ':', ',', '\\']) +
              text.slice(at);
            break;
          case 2:
            text = text.slice(0, at) + text.slice(at + 1);
            break;
          case 3:
            text = text.replace(/"/g, "'");
            break;
          case 4:
            text += r.pick([',', '}', ' garbage', '/* c */', '\u0000']);
            break;
          default:
            text =
              text.slice(0, at) +
              r.pick(['NaN', 'undefined', 'Infinity', '0x10', '.5']) +
              text.slice(at);
        }
      }
      try {
        JSON.parse(text);
        continue; // still valid: not a case for this test
      } catch {
        probes.push({ label: `broken JSON ${json(text.slice(0, 80))}`, body: text, status: 400 });
      }
    }
    expectNoProblems(await fuzz(probes));
  });

  it('answers JSON that is not an object with 400 and a coded error', async () => {
    const r = createRandom(SEED + 2);
    const values: unknown[] = [0, -1, 1.5, 'query', '{ me { id } }', null, true, false, [], [{}]];
    const probes: Probe[] = values.map((v) => ({
      label: `body ${json(v)}`,
      body: json(v),
      status: 400,
    }));
    while (probes.length < 100) {
      const value = r.chance(0.5)
        ? Array.from({ length: 1 + r.int(3) }, () => ({ query: '{ me { id } }' }))
        : r.pick([randomString(r), r.pick(HOSTILE_NUMBERS), [randomJson(r)]]);
      probes.push({ label: `body ${json(value).slice(0, 80)}`, body: json(value), status: 400 });
    }
    expectNoProblems(await fuzz(probes));
  });

  it('answers wrong types for query, variables, operationName and extensions with 400', async () => {
    const r = createRandom(SEED + 3);
    const wrong: Record<string, readonly unknown[]> = {
      query: [0, 1.5, true, false, {}, { query: '{ me { id } }' }, [], ['{ me { id } }'], ''],
      variables: ['string', '{"id":1}', 0, 1, true, false, [], [{ id: 1 }]],
      operationName: [0, 1, true, false, {}, [], ['Q']],
      extensions: ['string', 0, true, false, [], [{}]],
    };
    const probes: Probe[] = [];
    while (probes.length < 400) {
      const body: Record<string, unknown> = { query: 'query Q { me { id } }' };
      const broken = Object.keys(wrong).filter(() => r.chance(0.4));
      if (broken.length === 0) {
        broken.push(r.pick(Object.keys(wrong)));
      }
      for (const key of broken) {
        body[key] = r.pick(wrong[key]!);
      }
      if (r.chance(0.2)) {
        delete body.query;
        body[r.pick(['qeury', 'Query', 'document', 'q'])] = '{ me { id } }';
      }
      probes.push({
        label: `params ${json(body).slice(0, 120)}`,
        body: json(body),
        token: r.chance(0.5) ? fuzzer.token : undefined,
        accept: r.pick([undefined, 'application/json', 'application/graphql-response+json']),
        status: 400,
      });
    }
    for (const contentType of [
      null,
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/graphql',
      'application/json-patch+json',
      'text/html',
    ]) {
      probes.push({
        label: `content-type ${contentType}`,
        body: new TextEncoder().encode(operation('{ me { id } }')),
        contentType,
        status: 400,
      });
    }
    expectNoProblems(await fuzz(probes));
  });

  it('answers malformed GET requests with a coded client error', async () => {
    const r = createRandom(SEED + 4);
    const probes: Probe[] = [];
    const params = (entries: Record<string, string>) => new URLSearchParams(entries).toString();
    const fixed = [
      params({ query: 'mutation { login(username: "a", password: "b") { token } }' }),
      params({ query: '{ me { id } }', variables: '{"broken' }),
      params({ query: '{ me { id } }', variables: '[1]' }),
      params({ query: '{ me { id } }', extensions: 'nope' }),
      params({ query: '{' }),
      params({ variables: '{}' }),
      'query=%E0%A4%A',
      'query=%ff%fe',
      '',
    ];
    for (const search of fixed) {
      probes.push({ label: `GET ?${search.slice(0, 80)}`, body: '', method: 'GET', search });
    }
    while (probes.length < 60) {
      const search = params({ query: randomString(r), variables: randomString(r) });
      probes.push({ label: `GET ?${search.slice(0, 80)}`, body: '', method: 'GET', search });
    }
    expectNoProblems(await fuzz(probes));
  });

  it('refuses a body over 1 MB with 413 and a coded error', async () => {
    const huge = 'x'.repeat(2 * 1024 * 1024);
    const probes: Probe[] = [
      { label: '2 MB query', body: operation(`{ me { id } } # ${huge}`), status: 413 },
      { label: '2 MB variable', body: operation('{ me { id } }', { v: huge }), status: 413 },
      { label: '2 MB of spaces', body: ' '.repeat(2 * 1024 * 1024), status: 413 },
      {
        label: '2 MB with a token',
        body: operation('{ me { id } }', { v: huge }),
        token: fuzzer.token,
        status: 413,
      },
    ];
    expectNoProblems(await fuzz(probes));
  });

  it('refuses large strings under the body limit with coded errors', async () => {
    const big = 'y'.repeat(900 * 1024);
    const [model] = modelIds;
    const probes: Probe[] = [
      {
        label: '900 KB customAttributes',
        body: operation('mutation($i: CreateContextInput!) { createContext(input: $i) { id } }', {
          i: { model: { modelId: model }, customAttributes: { big } },
        }),
        token: fuzzer.token,
      },
      {
        label: '900 KB inference input',
        body: operation(
          'mutation($m: ID!, $x: JSON!) { infer(modelId: $m, input: $x) { output } }',
          {
            m: model,
            x: big,
          },
        ),
        token: fuzzer.token,
      },
      {
        label: '900 KB id',
        body: operation('query($id: ID!) { context(id: $id) { id } }', { id: big }),
        token: fuzzer.token,
      },
      {
        label: '900 KB password',
        body: operation(
          'mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token } }',
          { u: 'fuzzer', p: big },
        ),
      },
      { label: '900 KB query', body: operation(`{ me { id ${'a '.repeat(450 * 1024)}} }`) },
      {
        label: '900 KB operation name',
        body: json({ query: '{ me { id } }', operationName: big }),
      },
    ];
    expectNoProblems(await fuzz(probes));
  });

  // ------------------------------------------------------------------------ nesting

  it('refuses variables nested 500 levels and more, and queries nested 200 levels and more', async () => {
    const [model] = modelIds;
    const CREATE = 'mutation($i: CreateContextInput!) { createContext(input: $i) { id } }';
    const INFER =
      'mutation($m: ID!, $x: JSON!, $p: JSONObject) { infer(modelId: $m, input: $x, parameters: $p) { output } }';
    const probes: Probe[] = [];
    for (const levels of [500, 5_000, 50_000]) {
      const deepObject = nestedObjectJson(levels);
      const deepArray = nestedArrayJson(levels);
      probes.push(
        {
          label: `customAttributes nested ${levels}`,
          body: jsonWith(
            {
              query: CREATE,
              variables: { i: { model: { modelId: model }, customAttributes: RAW } },
            },
            deepObject,
          ),
          token: fuzzer.token,
        },
        {
          label: `preferences with arrays nested ${levels}`,
          body: jsonWith(
            {
              query: CREATE,
              variables: { i: { model: { modelId: model }, user: { preferences: { a: RAW } } } },
            },
            deepArray,
          ),
          token: fuzzer.token,
        },
        {
          label: `inference input nested ${levels}`,
          body: jsonWith({ query: INFER, variables: { m: model, x: RAW } }, deepObject),
          token: fuzzer.token,
        },
        {
          label: `inference parameters nested ${levels}`,
          body: jsonWith({ query: INFER, variables: { m: model, x: 'hello', p: RAW } }, deepObject),
          token: fuzzer.token,
        },
        {
          label: `unused variable nested ${levels} in a refused operation`,
          body: jsonWith({ query: '{ me { id } nope }', variables: { v: RAW } }, deepArray),
          token: fuzzer.token,
        },
        {
          label: `extensions nested ${levels}`,
          body: jsonWith({ query: '{ me { id } nope }', extensions: { a: RAW } }, deepObject),
          token: fuzzer.token,
        },
      );
    }
    for (const levels of [200, 1_000, 2_000]) {
      probes.push(
        {
          label: `query through Context nested ${levels}`,
          body: operation(`{ contexts { edges { node { ${nestedContextSelection(levels)} } } } }`),
          token: fuzzer.token,
        },
        {
          label: `unknown fields nested ${levels}`,
          body: operation(`${'{ a '.repeat(levels)}${'}'.repeat(levels)}`),
          token: fuzzer.token,
        },
        {
          label: `list literal nested ${levels}`,
          body: operation(
            `{ contexts(first: ${'['.repeat(levels)}1${']'.repeat(levels)}) { totalCount } }`,
          ),
          token: fuzzer.token,
        },
        {
          label: `object literal nested ${levels} in customAttributes`,
          body: operation(
            `mutation { createContext(input: { model: { modelId: ${json(model)} }, customAttributes: ${'{ a: '.repeat(levels)}1${' }'.repeat(levels)} }) { id } }`,
          ),
          token: fuzzer.token,
        },
      );
    }
    probes.push({
      label: 'query nested 5000 levels (past the token limit)',
      body: operation(`${'{ a '.repeat(5_000)}${'}'.repeat(5_000)}`),
    });
    expectNoProblems(await fuzz(probes));
  });

  it('refuses an operation past the token limit with QUERY_TOO_COMPLEX naming the limit', async () => {
    const res = await t.gql(`{ me { ${'id '.repeat(6_000)}} }`, {}, fuzzer.token);
    expect(res.status).toBe(400);
    expect(res.errors).toEqual([
      expect.objectContaining({
        extensions: { code: 'QUERY_TOO_COMPLEX', limit: 'tokens', max: 5_000 },
      }),
    ]);
  });

  // ------------------------------------------------------------------------ encodings

  it('answers bodies with invalid UTF-8 or unsupported charsets with coded errors', async () => {
    const r = createRandom(SEED + 5);
    const invalid = [
      [0xff],
      [0xfe, 0xff],
      [0xc3, 0x28],
      [0x80],
      [0xc0, 0xaf],
      [0xe0, 0x80, 0xaf],
      [0xed, 0xa0, 0x80],
      [0xf4, 0x90, 0x80, 0x80],
      [0xf8, 0x88, 0x80, 0x80, 0x80],
    ];
    // No string literals in these documents: a replacement character anywhere is a syntax error.
    const documents = ['{ me { id } }', 'query Q { contexts(first: 5) { totalCount } }'];
    const probes: Probe[] = [];
    while (probes.length < 150) {
      const document = r.pick(documents);
      const at = 1 + r.int(document.length - 2);
      const bytes = Buffer.concat([
        Buffer.from(`{"query":"${document.slice(0, at)}`),
        Buffer.from(r.pick(invalid)),
        Buffer.from(`${document.slice(at)}"}`),
      ]);
      probes.push({
        label: `invalid UTF-8 in ${json(document)} at ${at}`,
        body: new Uint8Array(bytes),
        token: fuzzer.token,
      });
    }
    for (const charset of ['latin1', 'utf-16', 'utf-32', 'ebcdic', 'x"']) {
      probes.push({
        label: `charset ${charset}`,
        body: operation('{ me { id } }'),
        contentType: `application/json; charset=${charset}`,
        token: fuzzer.token,
      });
    }
    for (const encoding of ['gzip', 'deflate', 'br', 'compress', 'x-unknown']) {
      probes.push({
        label: `content-encoding ${encoding} on a plain body`,
        body: operation('{ me { id } }'),
        headers: { 'content-encoding': encoding },
        token: fuzzer.token,
      });
    }
    expectNoProblems(await fuzz(probes));
  });

  // ------------------------------------------------------------------------ arguments

  it('refuses unknown fields in input objects, inline and as variables', async () => {
    const r = createRandom(SEED + 6);
    const [model] = modelIds;
    const probes: Probe[] = [];
    while (probes.length < 150) {
      const input: Record<string, any> = {
        model: { modelId: model },
        user: { preferences: { language: 'en' } },
        environment: { serverLoad: 0.5 },
        data: { source: 'fuzz' },
      };
      const target = r.pick([input, input.model, input.user, input.environment, input.data]);
      target[r.pick(['bogus', 'isAdmin', 'userId_', 'role', 'id', 'version'])] = randomJson(r);
      const create = r.chance(0.5);
      // A patch of the fuzzer's own context without expectedVersion: only the unknown field
      // stands between this request and a write.
      const query = create
        ? 'mutation($i: CreateContextInput!) { createContext(input: $i) { id } }'
        : 'mutation($id: ID!, $i: UpdateContextInput!) { updateContext(id: $id, patch: $i) { id } }';
      const variables = create ? { i: input } : { id: ownContext.id, i: input };
      const inline = r.chance(0.3);
      probes.push({
        label: `unknown field ${create ? 'createContext' : 'updateContext'} ${json(input).slice(0, 120)}${inline ? ' (inline)' : ''}`,
        body: inline
          ? operation(
              create
                ? `mutation { createContext(input: ${literal(input)}) { id } }`
                : `mutation { updateContext(id: ${json(ownContext.id)}, patch: ${literal(input)}) { id } }`,
            )
          : operation(query, variables),
        token: fuzzer.token,
      });
    }
    expectNoProblems(await fuzz(probes));
  });

  it('refuses negative, huge, fractional and mistyped page sizes', async () => {
    const r = createRandom(SEED + 7);
    const values: unknown[] = [
      -1,
      -100,
      -(2 ** 31),
      101,
      1000,
      2 ** 31 - 1,
      2 ** 31,
      1e15,
      1e300,
      0.5,
      1.5,
      20.0001,
      -0.5,
      '20',
      'abc',
      true,
      [],
      {},
      [20],
    ];
    const literals = [
      '-1',
      '-2147483648',
      '101',
      '2147483647',
      '99999999999',
      '1.5',
      '"5"',
      'true',
      '[5]',
      '{}',
      'FIRST',
    ];
    const fields = [
      { query: (a: string) => `{ contexts(${a}) { totalCount } }`, token: () => fuzzer.token },
      {
        query: (a: string) => `{ me { contexts(${a}) { totalCount } } }`,
        token: () => fuzzer.token,
      },
      { query: (a: string) => `{ users(${a}) { totalCount } }`, token: () => t.adminToken },
      {
        query: (a: string) => `{ erasureReceipts(${a}) { totalCount } }`,
        token: () => t.adminToken,
      },
      {
        query: (a: string) =>
          `{ context(id: ${json(ownContext.id)}) { history(${a}) { totalCount } } }`,
        token: () => fuzzer.token,
      },
      {
        query: (a: string) =>
          `{ context(id: ${json(ownContext.id)}) { history(${a.replace('first', 'last')}) { totalCount } } }`,
        token: () => fuzzer.token,
      },
    ];
    const probes: Probe[] = [];
    while (probes.length < 250) {
      const field = r.pick(fields);
      if (r.chance(0.5)) {
        const value = r.pick(values);
        const query = `query($n: Int) ${field.query('first: $n')}`;
        probes.push({
          label: `${query} with n = ${json(value)}`,
          body: operation(query, { n: value }),
          token: field.token(),
        });
      } else {
        const query = field.query(`first: ${r.pick(literals)}`);
        probes.push({ label: query, body: operation(query), token: field.token() });
      }
    }
    probes.push({
      label: 'history with both first and last',
      body: operation(
        `{ context(id: ${json(ownContext.id)}) { history(first: 1, last: 1) { totalCount } } }`,
      ),
      token: fuzzer.token,
    });
    for (const after of [
      '!!!',
      'null',
      cursorOf(null),
      cursorOf([1, 2, 3]),
      cursorOf(['x']),
      '%%%',
    ]) {
      probes.push({
        label: `contexts after ${after}`,
        body: operation('query($a: String) { contexts(after: $a) { totalCount } }', { a: after }),
        token: fuzzer.token,
      });
    }
    expectNoProblems(await fuzz(probes));
  });

  it('refuses JSON that is not an object where JSONObject is expected', async () => {
    const r = createRandom(SEED + 8);
    const [model] = modelIds;
    const slots: ((v: unknown) => Record<string, unknown>)[] = [
      (v) => ({ customAttributes: v }),
      (v) => ({ user: { preferences: v } }),
      (v) => ({ user: { demographics: v } }),
      (v) => ({ environment: { availableResources: v } }),
      (v) => ({ model: { modelId: model, parameters: v } }),
      (v) => ({ model: { modelId: model, constraints: v } }),
      (v) => ({ data: { qualityMetrics: v } }),
    ];
    const probes: Probe[] = [];
    while (probes.length < 150) {
      const value = r.pick(NOT_OBJECTS);
      if (r.chance(0.15)) {
        const query =
          'mutation($m: ID!, $p: JSONObject) { infer(modelId: $m, input: "hi", parameters: $p) { output } }';
        probes.push({
          label: `infer parameters ${json(value)}`,
          body: operation(query, { m: model, p: value }),
          token: fuzzer.token,
        });
        continue;
      }
      const input = { model: { modelId: model }, ...r.pick(slots)(value) };
      const inline = r.chance(0.4);
      probes.push({
        label: `createContext ${json(input)}${inline ? ' (inline)' : ''}`,
        body: inline
          ? operation(`mutation { createContext(input: ${literal(input)}) { id } }`)
          : operation('mutation($i: CreateContextInput!) { createContext(input: $i) { id } }', {
              i: input,
            }),
        token: fuzzer.token,
      });
    }
    expectNoProblems(await fuzz(probes));
  });

  // ------------------------------------------------------------------------ random mutations

  it('refuses 1500 random mutations with random arguments sent by a USER', async () => {
    const r = createRandom(SEED + 9);
    const fakeModelIds = () => r.pick([r.uuid(), r.uuid().toUpperCase(), randomString(r)]);
    // Ids the fuzzer may not touch or that do not exist; never its own user id.
    const foreignId = () =>
      r.pick([
        r.uuid(),
        victimContextId,
        victimContextId.toUpperCase(),
        victim.id,
        ` ${victimContextId}`,
        `${r.uuid()}0`,
        randomString(r),
        r.pick(HOSTILE_NUMBERS),
      ]);
    const jsonObject = () =>
      r.chance(0.7)
        ? Object.fromEntries(
            Array.from({ length: r.int(4) }, () => [
              r.pick([
                'language',
                'creativity',
                'apiKey',
                'password',
                '__proto__',
                randomString(r),
              ]),
              randomJson(r),
            ]),
          )
        : randomJson(r);
    const contextInput = (forUpdate: boolean) => {
      const input: Record<string, unknown> = {};
      if (!forUpdate || r.chance(0.3)) {
        input.model = {
          modelId: fakeModelIds(),
          parameters: jsonObject(),
          constraints: jsonObject(),
        };
      }
      if (r.chance(0.5)) {
        input.user = { preferences: jsonObject(), demographics: jsonObject() };
      }
      if (r.chance(0.5)) {
        input.environment = {
          timestamp: r.pick(['2024-13-45T00:00:00Z', 'yesterday', '', r.pick(HOSTILE_NUMBERS)]),
          deploymentEnvironment: new EnumValue(r.pick(['PRODUCTION', 'PROD', 'prod', 'null'])),
          serverLoad: r.pick([-1, 1.0001, 1e308, 'high', r.pick(HOSTILE_NUMBERS)]),
          availableResources: jsonObject(),
        };
      }
      if (r.chance(0.5)) {
        input.data = { source: randomString(r), qualityMetrics: jsonObject() };
      }
      if (r.chance(0.5)) {
        input.customAttributes = jsonObject();
      }
      if (r.chance(0.3)) {
        input.ttlSeconds = r.pick([-1, 0, 59, 1.5, 2 ** 31, 315_360_001]);
      }
      if (!forUpdate && r.chance(0.3)) {
        input.userId = foreignId();
      }
      return input;
    };
    /** Whatever else is random, the fuzzer's own context is only ever named with a stale version. */
    const staleVersion = () => ownContext.version + 1 + r.int(1000);
    const invalidParameters = () =>
      r.pick<Record<string, unknown>>([
        { temperature: r.pick([-0.1, 2.01, 'hot', [], null]) },
        { top_k: r.pick([0, 1001, 1.5, '40']) },
        { top_p: r.pick([0, 1.01, -1]) },
        { max_tokens: r.pick([0, -5, 1.5, 1e9]) },
        { seed: r.pick([-1, 2 ** 31, 'x']) },
        { verbose: r.pick(['yes', 1]) },
        { stop: r.pick([['a', 'b', 'c', 'd', 'e'], [''], ['x'.repeat(33)], 'stop', [1]]) },
        { [r.pick(['temprature', '__proto__', 'server_load', randomString(r) || 'z'])]: 1 },
      ]);
    const invalidInput = () =>
      r.pick([
        42,
        true,
        [],
        ['hello'],
        {},
        { prompt: 5 },
        { text: null },
        { prompt: ['x'] },
        'w'.repeat(20_001),
      ]);

    const argumentsFor: Record<string, () => Record<string, unknown>> = {
      createContext: () => ({ input: contextInput(false) }),
      updateContext: () => {
        const id = r.chance(0.3) ? ownContext.id : foreignId();
        return {
          id,
          patch: contextInput(true),
          expectedVersion: id === ownContext.id ? staleVersion() : r.pick([null, 1, -1, 2 ** 31]),
        };
      },
      updateContexts: () => ({
        updates: Array.from({ length: 1 + r.int(3) }, () => {
          const id = r.chance(0.3) ? ownContext.id : foreignId();
          return {
            id,
            patch: contextInput(true),
            expectedVersion: id === ownContext.id ? staleVersion() : r.pick([null, 1]),
          };
        }),
      }),
      deleteContext: () => ({ id: foreignId() }),
      deleteUserData: () => ({ userId: r.pick([foreignId(), t.adminToken.slice(0, 10)]) }),
      infer: () => {
        const args: Record<string, unknown> = {
          modelId: r.chance(0.6) ? r.pick(modelIds) : fakeModelIds(),
          input: r.chance(0.5) ? randomString(r) : randomJson(r),
          contextId: r.pick([null, ownContext.id, foreignId()]),
          parameters: r.chance(0.5) ? jsonObject() : null,
        };
        return args;
      },
      registerModel: () => ({
        input: {
          name: randomString(r),
          version: randomString(r),
          kind: new EnumValue(r.pick(['ONNX', 'REMOTE', 'PYTORCH'])),
          task: new EnumValue(r.pick(['TENSOR', 'TEXT_GENERATION', 'IMAGE'])),
          path: r.pick(['../../etc/passwd', '/etc/passwd', 'models/../../x.onnx', randomString(r)]),
          endpoint: r.pick([
            'http://169.254.169.254/latest/meta-data',
            'file:///etc/passwd',
            'gopher://x',
            randomString(r),
          ]),
          defaultParameters: jsonObject(),
          maxBatchSize: r.pick(HOSTILE_NUMBERS),
        },
      }),
      deleteModel: () => ({ id: r.pick([...modelIds, r.uuid(), randomString(r)]) }),
      login: () => ({
        username: r.pick(['admin', 'fuzzer', 'victim', randomString(r)]),
        password: randomString(r),
      }),
      createUser: () => ({
        input: {
          username: randomString(r),
          password: randomString(r),
          role: new EnumValue(r.pick(['ADMIN', 'USER', 'ROOT'])),
          email: randomString(r),
        },
      }),
      setUserDisabled: () => ({
        id: r.pick([victim.id, fuzzer.id, r.uuid()]),
        disabled: r.pick([true, false, 'true', 1]),
      }),
      setUserRole: () => ({
        id: r.pick([victim.id, fuzzer.id, r.uuid()]),
        role: new EnumValue(r.pick(['ADMIN', 'MODEL_DEVELOPER', 'GOD'])),
      }),
    };

    /**
     * The last word on each request: whatever the dice said, it must not be one the server
     * would carry out. A real model answers a valid inference, so one part of it is made wrong.
     */
    const ensureRefused = (name: string, args: Record<string, unknown>) => {
      if (name === 'infer' && modelIds.includes(args.modelId as string)) {
        switch (r.int(3)) {
          case 0:
            args.parameters = invalidParameters();
            break;
          case 1:
            args.input = invalidInput();
            break;
          default:
            args.contextId = r.pick([victimContextId, r.uuid(), randomString(r)]);
        }
      }
    };

    const probes: Probe[] = [];
    const names = Object.keys(MUTATION_FIELDS);
    while (probes.length < 1500) {
      // Logins hash a password even when refused (slow on purpose): send fewer of them.
      const name = r.pick(names);
      if (name === 'login' && r.chance(0.85)) {
        continue;
      }
      const { args: types, select } = MUTATION_FIELDS[name]!;
      const args = argumentsFor[name]!();
      // Now and then a whole argument of the wrong type; never where it could make a
      // refused write valid (a stale version, an empty batch).
      for (const key of Object.keys(args)) {
        if (r.chance(0.1) && key !== 'expectedVersion' && key !== 'updates') {
          args[key] = randomJson(r);
        }
      }
      ensureRefused(name, args);
      const inline = r.chance(0.3);
      let query: string;
      let variables: Record<string, unknown> | undefined;
      if (inline) {
        const list = Object.entries(args).map(([k, v]) => `${k}: ${literal(v)}`);
        query = `mutation { ${name}(${list.join(', ')}) ${select} }`;
      } else {
        const declared = Object.keys(args).map((k) => `$${k}: ${types[k]}`);
        const passed = Object.keys(args).map((k) => `${k}: $${k}`);
        query = `mutation(${declared.join(', ')}) { ${name}(${passed.join(', ')}) ${select} }`;
        variables = JSON.parse(json(args)) as Record<string, unknown>;
      }
      probes.push({
        label: `${name} ${json(inline ? query : variables).slice(0, 160)}`,
        body: operation(query, variables),
        token: fuzzer.token,
        accept: r.pick([undefined, 'application/graphql-response+json']),
      });
    }
    expectNoProblems(await fuzz(probes));
  });

  // ------------------------------------------------------------------------ what was left behind

  it('answers no malformed request with INTERNAL_SERVER_ERROR', () => {
    // Every request above is the client's fault; a masked internal error means an input
    // reached a place (SQL, a library) that threw instead of refusing it with a code.
    const internal = answers
      .filter((a) => codesOf(a).includes('INTERNAL_SERVER_ERROR'))
      .map((a) => a.probe.label.slice(0, 160));
    expect({ count: internal.length, first: internal.slice(0, 12) }).toEqual({
      count: 0,
      first: [],
    });
  });

  it('leaves the database as it was: no refused write reached it', async () => {
    expect(answers.length).toBeGreaterThan(2_500);
    expect(await snapshot()).toEqual(before);
  });

  it('refuses forged cursors that Postgres cannot read with BAD_USER_INPUT', async () => {
    const zero = '00000000-0000-4000-8000-000000000000';
    const cases = [
      // Date.parse accepts these; Postgres does not.
      {
        query: '{ contexts(after: $a) { totalCount } }',
        after: cursorOf(['1', zero]),
        token: fuzzer.token,
      },
      {
        query: '{ contexts(after: $a) { totalCount } }',
        after: cursorOf(['-000001-01-01T00:00:00Z', zero]),
        token: fuzzer.token,
      },
      {
        query: '{ users(after: $a) { totalCount } }',
        after: cursorOf(['1', zero]),
        token: t.adminToken,
      },
      {
        query: '{ erasureReceipts(after: $a) { totalCount } }',
        after: cursorOf(['1', zero]),
        token: t.adminToken,
      },
      // Integers that do not fit history_entries.sequence (integer).
      {
        query: `{ context(id: "${ownContext.id}") { history(after: $a) { totalCount } } }`,
        after: cursorOf([2 ** 31]),
        token: fuzzer.token,
      },
      {
        query: `{ context(id: "${ownContext.id}") { history(before: $a) { totalCount } } }`,
        after: cursorOf([1e300]),
        token: fuzzer.token,
      },
    ];
    const codes = [];
    for (const c of cases) {
      const res = await t.gql(`query($a: String) ${c.query}`, { a: c.after }, c.token);
      codes.push({
        query: c.query.slice(0, 40),
        codes: (res.errors ?? []).map((e) => e.extensions?.code),
      });
    }
    expect(codes).toEqual(
      cases.map((c) => ({ query: c.query.slice(0, 40), codes: ['BAD_USER_INPUT'] })),
    );
  });

  it('refuses NUL characters and lone surrogates in plaintext columns with BAD_USER_INPUT', async () => {
    // Postgres text and jsonb cannot hold U+0000, and jsonb refuses unpaired surrogates.
    const [model] = modelIds;
    const CREATE = 'mutation($i: CreateContextInput!) { createContext(input: $i) { id } }';
    const cases: {
      label: string;
      query: string;
      variables: Record<string, unknown>;
      token?: string;
    }[] = [
      {
        label: 'login username',
        query: 'mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token } }',
        variables: { u: 'a\u0000b', p: 'whatever-password' },
      },
      {
        label: 'data.source',
        query: CREATE,
        variables: { i: { model: { modelId: model }, data: { source: 'a\u0000b' } } },
        token: fuzzer.token,
      },
      {
        label: 'environment.availableResources key',
        query: CREATE,
        variables: {
          i: { model: { modelId: model }, environment: { availableResources: { 'k\u0000': 1 } } },
        },
        token: fuzzer.token,
      },
      {
        label: 'model.parameters lone surrogate',
        query: CREATE,
        variables: { i: { model: { modelId: model, parameters: { k: 'x\ud800' } } } },
        token: fuzzer.token,
      },
      {
        label: 'createUser fullName',
        query: 'mutation($i: CreateUserInput!) { createUser(input: $i) { id } }',
        variables: {
          i: { username: 'nul_name', password: 'long-enough-password', fullName: 'a\u0000b' },
        },
        token: t.adminToken,
      },
    ];
    const results = [];
    for (const c of cases) {
      const res = await t.gql(c.query, c.variables, c.token);
      results.push({ label: c.label, codes: (res.errors ?? []).map((e) => e.extensions?.code) });
    }
    expect(results).toEqual(cases.map((c) => ({ label: c.label, codes: ['BAD_USER_INPUT'] })));
  });

  // ------------------------------------------------------------------------ WebSocket

  describe('over WebSocket (graphql-transport-ws)', () => {
    const wsUrl = () => t.app.url.replace(/^http/, 'ws');

    /**
     * Opens a socket, optionally completes connection_init with the fuzzer's token, sends the
     * frames, and collects what comes back until the socket closes, an error or result
     * arrives, or WS_WAIT_MS pass.
     */
    async function exchange(
      label: string,
      frames: readonly (string | Buffer)[],
      options: { init?: boolean } = {},
    ): Promise<WsAnswer> {
      const socket = new WebSocket(wsUrl(), 'graphql-transport-ws');
      const messages: WsAnswer['messages'] = [];
      let close: WsAnswer['close'];
      let wake: () => void = () => undefined;
      const changed = () => new Promise<void>((resolve) => (wake = resolve));
      socket.on('message', (data: RawData) => {
        try {
          messages.push(JSON.parse(String(data)));
        } catch {
          messages.push({ type: `unparsable: ${String(data).slice(0, 80)}` });
        }
        wake();
      });
      socket.on('close', (code, reason) => {
        close = { code, reason: String(reason) };
        wake();
      });
      socket.on('error', () => wake());
      await new Promise<void>((resolve, reject) => {
        socket.once('open', () => resolve());
        socket.once('error', reject);
      });
      let acknowledged = false;
      if (options.init ?? true) {
        socket.send(
          JSON.stringify({
            type: 'connection_init',
            payload: { authorization: `Bearer ${fuzzer.token}` },
          }),
        );
        while (!close && !messages.some((m) => m.type === 'connection_ack')) {
          await changed();
        }
        acknowledged = !close;
        messages.length = 0;
      }
      for (const frame of frames) {
        if (!close) {
          socket.send(frame);
        }
      }
      const deadline = Date.now() + WS_WAIT_MS;
      while (
        !close &&
        !messages.some((m) => m.type === 'error' || m.type === 'next') &&
        Date.now() < deadline
      ) {
        await Promise.race([
          changed(),
          new Promise((resolve) => setTimeout(resolve, deadline - Date.now())),
        ]);
      }
      if (!close) {
        socket.close(1000);
      }
      return { label, acknowledged, close, messages: [...messages] };
    }

    const problemsIn = (answers: readonly WsAnswer[]) =>
      answers.flatMap((a) => {
        const problem = wsProblem(a);
        return problem ? [`${a.label}: ${problem}`] : [];
      });

    const subscribe = (id: string, payload: unknown) =>
      JSON.stringify({ id, type: 'subscribe', payload });
    const WATCH = 'subscription($c: ID!) { contextUpdated(contextId: $c) { id } }';

    it('closes with 4400 on frames that are not JSON objects', async () => {
      const frames = [
        '{',
        'not json',
        '{"type":',
        '[]',
        '[1,2]',
        '"connection_init"',
        '42',
        'null',
        '{"type":"subscribe"}x',
      ];
      const answers = [];
      for (const frame of frames) {
        answers.push(await exchange(`frame ${frame}`, [frame]));
      }
      answers.push(
        await exchange('binary frame of invalid UTF-8', [Buffer.from([0xff, 0xfe, 0x7b])]),
      );
      expect(answers.map((a) => [a.label, a.close?.code])).toEqual(
        answers.map((a) => [a.label, 4400]),
      );
    });

    it('closes with 4400 on messages of unknown or malformed types', async () => {
      const frames = [
        { type: 'hello' },
        { type: 42 },
        {},
        { type: 'subscribe' },
        { type: 'subscribe', id: 5, payload: { query: '{ me { id } }' } },
        { type: 'subscribe', id: '', payload: { query: '{ me { id } }' } },
        { type: 'subscribe', id: 'a', payload: 'query' },
        { type: 'subscribe', id: 'a', payload: { query: 42 } },
        { type: 'subscribe', id: 'a', payload: { query: '{ me { id } }', variables: 'x' } },
        { type: 'subscribe', id: 'a', payload: { query: '{ me { id } }', extensions: [1] } },
        { type: 'complete' },
        // Messages only a server may send.
        { type: 'next', id: 'a', payload: {} },
        { type: 'error', id: 'a', payload: [{ message: 'x' }] },
        { type: 'connection_ack' },
        { type: 'ping', payload: 'x' },
        { type: 'connection_init', payload: [1] },
      ];
      const answers = [];
      for (const frame of frames) {
        answers.push(await exchange(`message ${JSON.stringify(frame)}`, [JSON.stringify(frame)]));
      }
      expect(answers.map((a) => [a.label, a.close?.code])).toEqual(
        answers.map((a) => [a.label, 4400]),
      );
    });

    it('closes with 4401 on subscribe before connection_init, and 4429 on a second init', async () => {
      const early = await exchange(
        'subscribe before init',
        [subscribe('1', { query: '{ me { id } }' })],
        { init: false },
      );
      const twice = await exchange('second connection_init', [
        JSON.stringify({ type: 'connection_init', payload: {} }),
      ]);
      expect([early.close?.code, twice.close?.code]).toEqual([4401, 4429]);
    });

    it('answers huge frames with a 44xx close or a coded error', async () => {
      const huge = 'z'.repeat(2 * 1024 * 1024);
      const answers = [
        await exchange('2 MB broken JSON', [`{"type":"${huge}`]),
        await exchange(
          '2 MB connection_init token',
          [JSON.stringify({ type: 'connection_init', payload: { authorization: huge } })],
          { init: false },
        ),
        await exchange('2 MB contextId', [
          subscribe('1', { query: WATCH, variables: { c: huge } }),
        ]),
        await exchange('2 MB query', [subscribe('1', { query: `subscription { ${huge} }` })]),
      ];
      expect(problemsIn(answers)).toEqual([]);
    });

    it('answers a subscribe whose query does not parse with a coded error, keeping the socket open', async () => {
      const answer = await exchange('syntax error', [subscribe('1', { query: 'subscription {' })]);
      expect(answer.close).toBeUndefined();
      expect(wsProblem(answer)).toBeUndefined();
    });

    it('answers invalid operations and variables with coded errors', async () => {
      const answers = [
        await exchange('unknown field', [subscribe('1', { query: 'subscription { nope }' })]),
        await exchange('unknown operation name', [
          subscribe('1', { query: WATCH, operationName: 'Nope', variables: { c: ownContext.id } }),
        ]),
        await exchange('contextId of the wrong type', [
          subscribe('1', { query: WATCH, variables: { c: { id: 1 } } }),
        ]),
        await exchange('missing variable', [subscribe('1', { query: WATCH })]),
        await exchange('not a context id', [
          subscribe('1', { query: WATCH, variables: { c: 'x' } }),
        ]),
        await exchange("another user's context", [
          subscribe('1', { query: WATCH, variables: { c: victimContextId } }),
        ]),
        await exchange('a query with a negative page size', [
          subscribe('1', { query: '{ contexts(first: -1) { totalCount } }' }),
        ]),
      ];
      expect(problemsIn(answers)).toEqual([]);
    });

    it('refuses a subscription nested past the depth limit with QUERY_TOO_COMPLEX', async () => {
      const answer = await exchange('subscription nested 200 levels', [
        subscribe('1', {
          query: `subscription($c: ID!) { contextUpdated(contextId: $c) { ${nestedContextSelection(200)} } }`,
          variables: { c: ownContext.id },
        }),
      ]);
      const errors = answer.messages.find((m) => m.type === 'error')?.payload ?? [];
      expect(errors.map((e: any) => e.extensions?.code)).toEqual(['QUERY_TOO_COMPLEX']);
    });

    it('answers 150 random malformed messages with a 44xx close or a coded error', async () => {
      const r = createRandom(SEED + 10);
      const answers: WsAnswer[] = [];
      for (let i = 0; i < 150; i++) {
        const valid = subscribe(String(i), { query: WATCH, variables: { c: ownContext.id } });
        let frame: string;
        switch (r.int(5)) {
          case 0: {
            const at = r.int(valid.length - 1);
            frame = valid.slice(0, at) + r.pick(['', '{', '"', ']']) + valid.slice(at + 2);
            break;
          }
          case 1:
            frame = JSON.stringify({ ...JSON.parse(valid), type: randomString(r) });
            break;
          case 2:
            // An id that is not a non-empty string, or a payload that is not { query }.
            frame = JSON.stringify({
              ...JSON.parse(valid),
              ...(r.chance(0.5)
                ? { id: r.pick([5, null, true, [], {}, '']) }
                : { payload: r.pick([randomString(r), r.pick(HOSTILE_NUMBERS), [], null]) }),
            });
            break;
          case 3:
            frame = subscribe(String(i), { query: WATCH, variables: { c: randomJson(r) } });
            break;
          default:
            frame = subscribe(String(i), { query: randomString(r) });
        }
        answers.push(
          await exchange(`random ${frame.slice(0, 100)}`, [frame], { init: r.chance(0.85) }),
        );
      }
      const problems = problemsIn(answers);
      expect({ count: problems.length, first: problems.slice(0, 12) }).toEqual({
        count: 0,
        first: [],
      });
    });

    it('stays up: a fresh connection is acknowledged and answers a query', async () => {
      const answer = await exchange('a valid query', [
        subscribe('ok', { query: '{ me { username } }' }),
      ]);
      expect(answer.acknowledged).toBe(true);
      expect(answer.messages.find((m) => m.type === 'next')?.payload).toEqual({
        data: { me: { username: 'fuzzer' } },
      });
    });
  });

  it('kept answering /health throughout', async () => {
    const { checks, failures } = await health.stop();
    expect(failures).toEqual([]);
    expect(checks).toBeGreaterThan(10);
    const res = await fetch(`${base}/health`);
    expect(res.status).toBe(200);
  });
});
