/**
 * `npm run bench [-- --quick] [-- --cpu-prof]`: starts a real PostgreSQL and Redis (as the test
 * harness does), the server as its own process, seeds data, and measures the server against
 * baselines run on the same machine in the same run. Every headline figure is a ratio of two
 * such measurements (or a count, a latency or a size measured in this run). Prints a table
 * and writes bench/results.json.
 *
 * --quick             shorter measurements (the whole run stays under 3 minutes on 2 cores)
 * --cpu-prof          the server writes a V8 CPU profile to bench/profiles/ when it stops
 * --heap-snapshot     the server writes a V8 heap snapshot (hundreds of MB, so to the system's
 *                     temporary directory) while it holds the most subscriptions
 * --appends=N         development aid: how many appends the fan-out row times
 * --server-env=K=V,…  development aid: extra server settings (recorded in results.json)
 * --only=PHASE,…      development aid: run only these phases (the other keys are null)
 * --server-root=DIR   development aid: run the server of another checkout (a patched copy)
 *                     against the same baselines
 * --server-node-args="--trace-gc …"  development aid: extra node flags for the server
 */
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { Client, Pool } from 'pg';
import { defaultIntraOpThreads } from '../src/inference/onnx/onnx-pool';
import { startPostgresServer, startRedisServer } from '../test/support/services';
import {
  BENCH_INPUT_SIZE,
  BENCH_MODEL,
  BENCH_MODEL_SUMMARY,
  benchInputs,
  prepareModelDir,
} from './bench-model';
import { mergeLoads, runLoad, type LoadResult } from './load';
import { startRawBaseline, type RawBaseline } from './raw-baseline';
import { table, writeResults, type Row } from './report';
import { seedContexts, sections, type SeededContext } from './seed';
import { metricValue, startBenchServer, type BenchServer } from './server';
import { WARM_UP_APPENDS, runSubscriptions } from './subscriptions';

const REPO_ROOT = path.resolve(__dirname, '..');
const QUICK = process.argv.includes('--quick');
const CPU_PROF = process.argv.includes('--cpu-prof');
const HEAP_SNAPSHOT = process.argv.includes('--heap-snapshot');
const SERVER_ROOT = process.argv.find((a) => a.startsWith('--server-root='))?.split('=')[1];
const SERVER_NODE_ARGS = (
  process.argv
    .find((a) => a.startsWith('--server-node-args='))
    ?.slice('--server-node-args='.length) ?? ''
)
  .split(' ')
  .filter(Boolean);

const SERVER_ENV = Object.fromEntries(
  (process.argv.find((a) => a.startsWith('--server-env='))?.slice('--server-env='.length) ?? '')
    .split(',')
    .filter(Boolean)
    .map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]),
);
const APPENDS = process.argv.find((a) => a.startsWith('--appends='))?.split('=')[1];
// The inference rows run longer: a batch of the benchmark model takes about a third of a
// second, and a row should see many of them.
const SETTINGS_BASE = QUICK
  ? { durationS: 4, inferS: 6, warmupS: 1, rounds: 2, appends: 5, rawOrtS: 6 }
  : { durationS: 12, inferS: 15, warmupS: 2, rounds: 3, appends: 20, rawOrtS: 15 };
const SETTINGS = APPENDS ? { ...SETTINGS_BASE, appends: Number(APPENDS) } : SETTINGS_BASE;
const READ_CONNECTIONS = 16;
const WRITE_CONNECTIONS = 16;
const INFER_CONNECTIONS = 64;
/** Batch limit of the batched and cached variants (the unbatched one has 1). */
const INFER_MAX_BATCH = 32;
const PAGE = 10; // contexts(first: 10) under load
const HISTORY_PAGE = 5;
const SEEDED_CONTEXTS = 150;
const HISTORY_PER_CONTEXT = 8;
const SUBSCRIPTIONS = 10_000;
const SUBSCRIPTIONS_PER_CONNECTION = 1_000;
const HOT_SUBSCRIBERS = 1_000;
const DB_POOL_SIZE = 10; // the server's default DATABASE_POOL_SIZE, given to the baseline too
/** prom-client samples event-loop delay with a 10 ms timer; its percentiles include that interval. */
const EVENT_LOOP_RESOLUTION_MS = 10;

const JWT_SECRET = 'bench-secret-that-is-at-least-32-bytes-long';
const ENCRYPTION_KEYS = `bench:${Buffer.alloc(32, 7).toString('base64')}`;
const ADMIN_PASSWORD = 'bench-admin-password';

const CONTEXTS_QUERY = `query Contexts($first: Int!) {
  contexts(first: $first) {
    edges {
      cursor
      node {
        id
        version
        updatedAt
        user { user { id username } preferences demographics }
        environment { deploymentEnvironment serverLoad availableResources }
        model { model { id name version } parameters constraints }
        data { source qualityMetrics }
        customAttributes
        history(first: ${HISTORY_PAGE}) {
          edges { node { sequence createdAt input output } }
          pageInfo { hasNextPage }
        }
      }
    }
    pageInfo { hasNextPage endCursor }
  }
}`;

const UPDATE_MUTATION = `mutation Update($id: ID!, $patch: UpdateContextInput!) {
  updateContext(id: $id, patch: $patch) {
    id
    version
    user { preferences demographics }
    environment { deploymentEnvironment serverLoad availableResources }
    data { source qualityMetrics }
    customAttributes
  }
}`;

const INFER_MUTATION = `mutation Infer($model: ID!, $input: JSON!) {
  infer(modelId: $model, input: $input) { output cached batchSize executionProvider }
}`;

const APPEND_MUTATION = `mutation Append($model: ID!, $context: ID!) {
  infer(modelId: $model, input: "a quick and helpful answer", contextId: $context) {
    historyEntry { sequence }
  }
}`;

const REGISTER_MUTATION = `mutation Register($input: RegisterModelInput!) {
  registerModel(input: $input) { id executionProvider }
}`;

async function gql<T = any>(
  url: string,
  query: string,
  variables: Record<string, unknown> = {},
  token?: string,
): Promise<T> {
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await res.json()) as { data?: T; errors?: unknown[] };
  if (body.errors?.length || !body.data) {
    throw new Error(`GraphQL errors: ${JSON.stringify(body.errors)}`);
  }
  return body.data;
}

async function post(url: string, body: unknown, token: string): Promise<any> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
  return res.json();
}

const round = (value: number, digits = 2) => Number(value.toFixed(digits));
const log = (message: string) => process.stderr.write(`[bench] ${message}\n`);

/** A cycling supplier of precomputed request bodies (no per-request work in the generator). */
function cycle(bodies: readonly string[]): () => string {
  let i = 0;
  return () => bodies[i++ % bodies.length]!;
}

/** Errors the server answered with HTTP 200 (GraphQL errors), from its own counter. */
async function graphqlErrors(server: BenchServer): Promise<number> {
  const value = metricValue(await server.metrics(), 'graphql_errors_total');
  return Number.isNaN(value) ? 0 : value;
}

interface Measured {
  readonly result: LoadResult;
  readonly graphqlErrors: number;
  /** Server process CPU (all threads) per completed request. */
  readonly cpuMsPerRequest: number;
}

type LoadShape = Omit<Parameters<typeof runLoad>[0], 'durationS' | 'url'>;

/**
 * The server and the raw baseline under the same load, in alternating rounds (server, raw,
 * server, raw …) after one warm-up each, so that a burst of outside load on this shared
 * machine falls on both sides rather than on one.
 */
async function compareWithRaw(
  server: BenchServer,
  raw: RawBaseline,
  serverLoad: LoadShape,
  rawUrl: string,
  rawLoad: LoadShape,
): Promise<{ server: Measured; raw: LoadResult; rawBusyMsPerRequest: number }> {
  await runLoad({ ...serverLoad, url: server.url, durationS: SETTINGS.warmupS });
  await runLoad({ ...rawLoad, url: rawUrl, durationS: SETTINGS.warmupS });
  const durationS = SETTINGS.durationS / SETTINGS.rounds;
  const serverRuns: LoadResult[] = [];
  const rawRuns: LoadResult[] = [];
  let cpu = 0;
  let busy = 0;
  const errorsBefore = await graphqlErrors(server);
  for (let round = 0; round < SETTINGS.rounds; round++) {
    const cpuBefore = server.cpuSeconds();
    serverRuns.push(await runLoad({ ...serverLoad, url: server.url, durationS }));
    cpu += server.cpuSeconds() - cpuBefore;
    const busyBefore = raw.busyMs();
    rawRuns.push(await runLoad({ ...rawLoad, url: rawUrl, durationS }));
    busy += raw.busyMs() - busyBefore;
  }
  const serverResult = mergeLoads(serverRuns);
  const rawResult = mergeLoads(rawRuns);
  return {
    server: {
      result: serverResult,
      graphqlErrors: (await graphqlErrors(server)) - errorsBefore,
      cpuMsPerRequest: (cpu * 1000) / serverResult.requests,
    },
    raw: rawResult,
    rawBusyMsPerRequest: busy / rawResult.requests,
  };
}

const summary = (r: LoadResult) => ({
  rps: round(r.rps, 1),
  requests: r.requests,
  connections: r.connections,
  durationS: round(r.durationS, 1),
  latencyMs: {
    p50: round(r.latencyMs.p50),
    p95: round(r.latencyMs.p95),
    p99: round(r.latencyMs.p99),
  },
  failures: r.failures,
});

const serverSummary = (m: Measured) => ({
  ...summary(m.result),
  graphqlErrors: m.graphqlErrors,
  cpuMsPerRequest: round(m.cpuMsPerRequest),
});

/** What every phase works with: the running server, the seeded data, and the report. */
interface Bench {
  readonly server: BenchServer;
  readonly databaseUrl: string;
  readonly token: string;
  readonly adminToken: string;
  readonly sentimentId: string;
  readonly benchModelFile: string;
  readonly contexts: readonly SeededContext[];
  readonly rows: Row[];
  readonly details: Record<string, unknown>;
  /** The inference rows' execution provider, once known. */
  executionProvider: string;
}

const auth = (bench: Bench) => ({ authorization: `Bearer ${bench.token}` });

async function sqlPhase(bench: Bench): Promise<void> {
  const { server, token } = bench;
  const sqlPerRequest = async (first: number, times = 3) => {
    const counts: number[] = [];
    for (let i = 0; i < times; i++) {
      const before = metricValue(await server.metrics(), 'db_queries_total');
      const data = await gql(server.url, CONTEXTS_QUERY, { first }, token);
      const after = metricValue(await server.metrics(), 'db_queries_total');
      if (data.contexts.edges.length !== first) {
        throw new Error(`contexts(first: ${first}) returned ${data.contexts.edges.length}`);
      }
      counts.push(after - before);
    }
    return counts;
  };
  // The first request after start also reads the caller's user row and the model rows into
  // the replica's copies; it is counted apart, and the table shows a replica that has served.
  const [cold] = await sqlPerRequest(1, 1);
  const n10 = await sqlPerRequest(10);
  const n100 = await sqlPerRequest(100);
  bench.details.sql = {
    n10,
    n100,
    firstRequestAfterStart: { first: 1, statements: cold },
    note: 'three requests each after a first one that fills the replica copies of user and model rows; the table shows the first of the three',
  };
  bench.rows.push(
    { key: 'sql.perRequest.n10', value: n10[0]!, target: { op: '<=', value: 5 } },
    {
      key: 'sql.perRequest.n100',
      value: n100[0]!,
      target: { op: '==', value: n10[0]! },
      note: n100[0]! <= 5 ? 'equal to n10, ≤ 5' : 'must equal n10 and be ≤ 5',
    },
  );
}

async function withRawBaseline<T>(bench: Bench, run: (raw: RawBaseline) => Promise<T>): Promise<T> {
  const raw = await startRawBaseline({
    databaseUrl: bench.databaseUrl,
    jwtSecret: JWT_SECRET,
    encryptionKeys: ENCRYPTION_KEYS,
    poolSize: DB_POOL_SIZE,
    historyPage: HISTORY_PAGE,
  });
  try {
    return await run(raw);
  } finally {
    await raw.stop();
  }
}

/** Records a server-vs-raw comparison: the details for results.json and the ratio row. */
function reportVsRaw(
  bench: Bench,
  compared: Awaited<ReturnType<typeof compareWithRaw>>,
  row: {
    detail: string;
    what: Record<string, string>;
    key: string;
    target: number;
    connections: number;
  },
): void {
  bench.details[row.detail] = {
    ...row.what,
    server: serverSummary(compared.server),
    rawPg: { ...summary(compared.raw), busyMsPerRequest: round(compared.rawBusyMsPerRequest) },
    rounds: SETTINGS.rounds,
    sameAnswer: true,
  };
  bench.rows.push({
    key: row.key,
    value: round(compared.server.result.rps / compared.raw.rps),
    target: { op: '>=', value: row.target },
    note: `${compared.server.result.rps.toFixed(0)} vs ${compared.raw.rps.toFixed(0)} req/s, c=${row.connections}`,
  });
}

async function readsPhase(bench: Bench): Promise<void> {
  const { server, token } = bench;
  await withRawBaseline(bench, async (raw) => {
    const serverPage = await gql(server.url, CONTEXTS_QUERY, { first: PAGE }, token);
    const rawPage = await post(raw.contextsUrl, { first: PAGE }, token);
    if (!isDeepStrictEqual(rawPage.data, serverPage)) {
      throw new Error(
        `the raw baseline does not answer what the server does:\nserver ${JSON.stringify(serverPage).slice(0, 2000)}\nraw    ${JSON.stringify(rawPage.data).slice(0, 2000)}`,
      );
    }
    const compared = await compareWithRaw(
      server,
      raw,
      {
        connections: READ_CONNECTIONS,
        headers: auth(bench),
        body: cycle([JSON.stringify({ query: CONTEXTS_QUERY, variables: { first: PAGE } })]),
      },
      raw.contextsUrl,
      {
        connections: READ_CONNECTIONS,
        headers: auth(bench),
        body: cycle([JSON.stringify({ first: PAGE })]),
      },
    );
    reportVsRaw(bench, compared, {
      detail: 'reads',
      what: { query: `contexts(first: ${PAGE}) with user, model, history(first: ${HISTORY_PAGE})` },
      key: 'graphql.vsRawPg',
      target: 0.5,
      connections: READ_CONNECTIONS,
    });
  });
}

async function writesPhase(bench: Bench): Promise<void> {
  const { server, token } = bench;
  const patchOf = (i: number) => {
    const s = sections(i);
    return {
      user: s.user,
      environment: s.environment,
      data: s.data,
      customAttributes: { ...s.customAttributes, updatedBy: 'bench' },
    };
  };
  const writable = bench.contexts.slice(1); // the first is the subscription phase's hot context
  await withRawBaseline(bench, async (raw) => {
    const serverWrite = await gql(
      server.url,
      UPDATE_MUTATION,
      { id: writable[0]!.id, patch: patchOf(0) },
      token,
    );
    const rawWrite = await post(raw.updateUrl, { id: writable[1]!.id, patch: patchOf(0) }, token);
    const comparable = (u: any) => ({ ...u, id: undefined, version: undefined });
    if (
      !isDeepStrictEqual(
        comparable(rawWrite.data?.updateContext),
        comparable(serverWrite.updateContext),
      )
    ) {
      throw new Error(
        `the raw update does not answer what the server does:\nserver ${JSON.stringify(serverWrite)}\nraw    ${JSON.stringify(rawWrite)}`,
      );
    }
    const compared = await compareWithRaw(
      server,
      raw,
      {
        connections: WRITE_CONNECTIONS,
        headers: auth(bench),
        body: cycle(
          writable.map((c, i) =>
            JSON.stringify({ query: UPDATE_MUTATION, variables: { id: c.id, patch: patchOf(i) } }),
          ),
        ),
      },
      raw.updateUrl,
      {
        connections: WRITE_CONNECTIONS,
        headers: auth(bench),
        body: cycle(writable.map((c, i) => JSON.stringify({ id: c.id, patch: patchOf(i) }))),
      },
    );
    reportVsRaw(bench, compared, {
      detail: 'writes',
      what: { mutation: 'updateContext replacing user, environment, data and customAttributes' },
      key: 'writes.updateVsRawPg',
      target: 0.33,
      connections: WRITE_CONNECTIONS,
    });
  });
}

async function inferencePhase(bench: Bench): Promise<void> {
  const { server, token } = bench;
  const register = async (version: string, maxBatchSize: number, cacheable: boolean) =>
    (
      await gql(
        server.url,
        REGISTER_MUTATION,
        {
          input: {
            name: BENCH_MODEL.name,
            version,
            kind: 'ONNX',
            task: 'TENSOR',
            path: BENCH_MODEL.path,
            cacheable,
            maxBatchSize,
            maxQueueDelayMs: 2,
            rateLimitPerMinute: 1_000_000,
          },
        },
        bench.adminToken,
      )
    ).registerModel.id as string;
  log('inference: registering the benchmark model (three variants)');
  const batchedId = await register('batched', INFER_MAX_BATCH, false);
  const unbatchedId = await register('unbatched', 1, false);
  const cachedId = await register('cached', INFER_MAX_BATCH, true);
  const inputs = benchInputs(256);
  const tensorInput = (row: number[]) => ({
    [BENCH_MODEL.input]: { shape: [1, BENCH_INPUT_SIZE], datatype: 'FP32', data: row },
  });
  const inferBodies = (model: string, rowsIn: number[][]) =>
    rowsIn.map((row) =>
      JSON.stringify({ query: INFER_MUTATION, variables: { model, input: tensorInput(row) } }),
    );
  const bodies = {
    batched: cycle(inferBodies(batchedId, inputs)),
    unbatched: cycle(inferBodies(unbatchedId, inputs)),
    cached: cycle(inferBodies(cachedId, inputs.slice(0, 16))),
  };
  for (const row of inputs.slice(0, 16)) {
    await gql(server.url, INFER_MUTATION, { model: cachedId, input: tensorInput(row) }, token);
  }
  const probe = await gql(
    server.url,
    INFER_MUTATION,
    { model: batchedId, input: tensorInput(inputs[0]!) },
    token,
  );
  bench.executionProvider = probe.infer.executionProvider as string;

  const batchSizes = new Map<number, number>();
  let cacheMisses = 0;
  const onBody = {
    batched: (body: string) => {
      const size = Number(/"batchSize":(\d+)/.exec(body)?.[1]);
      if (size > 0) {
        batchSizes.set(size, (batchSizes.get(size) ?? 0) + 1);
      }
    },
    unbatched: undefined,
    cached: (body: string) => {
      if (!body.includes('"cached":true')) {
        cacheMisses++;
      }
    },
  };
  type InferRow = keyof typeof bodies;
  const ROWS: InferRow[] = ['batched', 'unbatched', 'cached'];
  const shape = (row: InferRow) => ({
    connections: INFER_CONNECTIONS,
    headers: auth(bench),
    body: bodies[row],
  });
  for (const row of ROWS) {
    await runLoad({ ...shape(row), url: server.url, durationS: SETTINGS.warmupS });
    await drained(server);
  }

  // Rounds of batched, unbatched, cached and raw onnxruntime in turn: outside load on this
  // shared machine then falls on every row alike.
  const runsOf = { batched: [], unbatched: [], cached: [] } as Record<InferRow, LoadResult[]>;
  const cpuOf = { batched: 0, unbatched: 0, cached: 0 } as Record<InferRow, number>;
  const lag: Record<InferRow, { p99Ms: number; maxMs: number }> = {
    batched: { p99Ms: 0, maxMs: 0 },
    unbatched: { p99Ms: 0, maxMs: 0 },
    cached: { p99Ms: 0, maxMs: 0 },
  };
  const rawOrt = { items: 0, runs: 0, ms: 0 };
  const errorsBefore = await graphqlErrors(server);
  const durationS = SETTINGS.inferS / SETTINGS.rounds;
  const raw = await openRawOnnxruntime(bench.benchModelFile, inputs);
  try {
    for (let round = 0; round < SETTINGS.rounds; round++) {
      for (const row of ROWS) {
        log(`inference: ${row} (round ${round + 1} of ${SETTINGS.rounds})`);
        await server.metrics(); // each scrape resets prom-client's event-loop histogram
        const cpuBefore = server.cpuSeconds();
        runsOf[row].push(
          await runLoad({ ...shape(row), onBody: onBody[row], url: server.url, durationS }),
        );
        cpuOf[row] += server.cpuSeconds() - cpuBefore;
        const text = await server.metrics();
        lag[row].p99Ms = Math.max(
          lag[row].p99Ms,
          metricValue(text, 'nodejs_eventloop_lag_p99_seconds') * 1000,
        );
        lag[row].maxMs = Math.max(
          lag[row].maxMs,
          metricValue(text, 'nodejs_eventloop_lag_max_seconds') * 1000,
        );
        // What the load generator left queued when it stopped is served before the next row.
        await drained(server);
      }
      log(`inference: raw onnxruntime (round ${round + 1} of ${SETTINGS.rounds})`);
      const replay = await raw.replay(
        runsFromBatchSizes(batchSizes),
        SETTINGS.rawOrtS / SETTINGS.rounds,
      );
      rawOrt.items += replay.items;
      rawOrt.runs += replay.runs;
      rawOrt.ms += replay.elapsedMs;
    }
  } finally {
    await raw.close();
  }
  const graphqlErrorsSeen = (await graphqlErrors(server)) - errorsBefore;
  const results = Object.fromEntries(ROWS.map((row) => [row, mergeLoads(runsOf[row])])) as Record<
    InferRow,
    LoadResult
  >;
  const cpuMs = (row: InferRow) => round((cpuOf[row] * 1000) / results[row].requests);
  const rawItemsPerSecond = (rawOrt.items * 1000) / rawOrt.ms;
  const batchedRps = results.batched.rps;
  const unbatchedRps = results.unbatched.rps;
  const cachedRps = results.cached.rps;
  const requestsSeen = [...batchSizes].reduce((n, [, count]) => n + count, 0);
  const meanBatch =
    [...batchSizes].reduce((n, [size, count]) => n + size * count, 0) / Math.max(1, requestsSeen);
  bench.details.inference = {
    model: BENCH_MODEL_SUMMARY,
    executionProvider: bench.executionProvider,
    concurrency: INFER_CONNECTIONS,
    rounds: SETTINGS.rounds,
    graphqlErrors: graphqlErrorsSeen,
    batched: {
      ...summary(results.batched),
      cpuMsPerRequest: cpuMs('batched'),
      maxBatchSize: INFER_MAX_BATCH,
    },
    unbatched: {
      ...summary(results.unbatched),
      cpuMsPerRequest: cpuMs('unbatched'),
      maxBatchSize: 1,
    },
    cached: { ...summary(results.cached), cpuMsPerRequest: cpuMs('cached'), cacheMisses },
    batchSizesByRequest: Object.fromEntries([...batchSizes].sort((a, b) => a[0] - b[0])),
    meanBatchSizePerRequest: round(meanBatch),
    rawOnnxruntime: {
      itemsPerSecond: round(rawItemsPerSecond, 1),
      runs: rawOrt.runs,
      meanRunMs: round(rawOrt.ms / rawOrt.runs),
      sessionOptions: RAW_SESSION_OPTIONS,
    },
  };
  bench.rows.push(
    {
      key: 'inference.batchedVsUnbatched',
      value: round(batchedRps / unbatchedRps),
      target: { op: '>=', value: 4 },
      note: `${batchedRps.toFixed(0)} vs ${unbatchedRps.toFixed(0)} req/s, c=${INFER_CONNECTIONS}`,
    },
    {
      key: 'inference.batchedVsRawOrt',
      value: round(batchedRps / rawItemsPerSecond),
      target: { op: '>=', value: 0.8 },
      note: `${batchedRps.toFixed(0)} req/s vs ${rawItemsPerSecond.toFixed(0)} items/s (mean batch ${meanBatch.toFixed(1)})`,
    },
    {
      key: 'inference.cachedVsUncached',
      value: round(cachedRps / batchedRps),
      target: { op: '>=', value: 10 },
      note: `${cachedRps.toFixed(0)} vs ${batchedRps.toFixed(0)} req/s (uncached: the batched row)`,
    },
  );
  const worst = ROWS.reduce((a, b) => (lag[b].p99Ms > lag[a].p99Ms ? b : a));
  bench.details.eventLoop = {
    source:
      'nodejs_eventloop_lag_p99_seconds (prom-client, 10 ms sampling timer), reset around each run; worst round per row',
    byRow: Object.fromEntries(
      ROWS.map((row) => [row, { rawP99Ms: round(lag[row].p99Ms), maxMs: round(lag[row].maxMs) }]),
    ),
    resolutionMs: EVENT_LOOP_RESOLUTION_MS,
  };
  bench.rows.push({
    key: 'eventLoop.p99DelayMsUnderInference',
    value: round(lag[worst].p99Ms - EVENT_LOOP_RESOLUTION_MS),
    target: { op: '<', value: 20 },
    unit: ' ms',
    note: `worst row (${worst}): raw p99 ${lag[worst].p99Ms.toFixed(1)} ms less the 10 ms sampling interval`,
  });
}

/** The batches the server ran, by size: n requests served in batches of b are n / b runs. */
function runsFromBatchSizes(batchSizes: ReadonlyMap<number, number>): number[] {
  const runs: number[] = [];
  for (const [size, requests] of [...batchSizes].sort((a, b) => a[0] - b[0])) {
    for (let i = 0; i < Math.max(1, Math.round(requests / size)); i++) {
      runs.push(size);
    }
  }
  shuffle(runs); // interleaved, so a time-boxed replay keeps the server's mix of sizes
  return runs;
}

async function subscriptionsPhase(bench: Bench): Promise<void> {
  const { server, token } = bench;
  log(`subscriptions: opening ${SUBSCRIPTIONS}`);
  const hot = bench.contexts[0]!;
  const subs = await runSubscriptions({
    wsUrl: server.url.replace(/^http/, 'ws'),
    token,
    contexts: bench.contexts,
    hot,
    total: SUBSCRIPTIONS,
    perConnection: SUBSCRIPTIONS_PER_CONNECTION,
    hotSubscribers: HOT_SUBSCRIBERS,
    appends: SETTINGS.appends,
    append: async () => {
      await gql(server.url, APPEND_MUTATION, { model: bench.sentimentId, context: hot.id }, token);
    },
    memory: async (atMax) => {
      if (atMax && HEAP_SNAPSHOT) {
        await server.heapSnapshot();
      }
      const text = await server.metrics();
      return {
        rss: round(server.rssBytes() / 2 ** 20, 1),
        heapUsed: round(metricValue(text, 'nodejs_heap_size_used_bytes') / 2 ** 20, 1),
        external: round(metricValue(text, 'nodejs_external_memory_bytes') / 2 ** 20, 1),
      };
    },
    activeSubscriptions: async () =>
      metricValue(await server.metrics(), 'graphql_subscriptions_active'),
  });
  const ms = (l: { p50: number; p95: number; p99: number }) => ({
    p50: round(l.p50),
    p95: round(l.p95),
    p99: round(l.p99),
  });
  bench.details.subscriptions = {
    connections: subs.connections,
    openSeconds: round(subs.openSeconds, 1),
    memoryMb: { beforeOpening: subs.before, atMax: subs.atMax },
    fanout: {
      subscribers: HOT_SUBSCRIBERS,
      appends: SETTINGS.appends,
      untimedWarmUpAppends: WARM_UP_APPENDS,
      deliveries: subs.deliveries,
      latencyMs: ms(subs.fanoutMs),
      measuredFrom: 'sending the infer mutation that appends the entry',
      appendRequestMs: ms(subs.appendMs),
    },
  };
  bench.rows.push(
    {
      key: 'subscriptions.count',
      value: subs.count,
      target: { op: '>=', value: SUBSCRIPTIONS },
      note: `over ${subs.connections} connections, opened in ${subs.openSeconds.toFixed(1)} s`,
    },
    {
      key: 'subscriptions.fanoutP99Ms',
      value: round(subs.fanoutMs.p99),
      target: { op: '<', value: 50 },
      unit: ' ms',
      note: `${HOT_SUBSCRIBERS} subscribers × ${SETTINGS.appends} appends`,
    },
    {
      key: 'subscriptions.rssMb',
      value: subs.atMax.rss,
      target: { op: '<', value: 600 },
      unit: ' MB',
      note: `${subs.before.rss.toFixed(0)} MB before opening`,
    },
  );
}

const PHASES = {
  sql: { run: sqlPhase, keys: ['sql.perRequest.n10', 'sql.perRequest.n100'] },
  reads: { run: readsPhase, keys: ['graphql.vsRawPg'] },
  writes: { run: writesPhase, keys: ['writes.updateVsRawPg'] },
  subscriptions: {
    run: subscriptionsPhase,
    keys: ['subscriptions.count', 'subscriptions.fanoutP99Ms', 'subscriptions.rssMb'],
  },
  inference: {
    run: inferencePhase,
    keys: [
      'inference.batchedVsUnbatched',
      'inference.batchedVsRawOrt',
      'inference.cachedVsUncached',
      'eventLoop.p99DelayMsUnderInference',
    ],
  },
} as const;
type Phase = keyof typeof PHASES;

/** `--only=reads,writes`: a development aid; the other keys are reported as skipped. */
function selectedPhases(): Phase[] {
  const only = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length);
  const all = Object.keys(PHASES) as Phase[];
  if (!only) {
    return all;
  }
  const chosen = only.split(',').map((p) => p.trim());
  const unknown = chosen.filter((p) => !all.includes(p as Phase));
  if (unknown.length) {
    throw new Error(`--only: unknown phase ${unknown.join(', ')} (phases: ${all.join(', ')})`);
  }
  return chosen as Phase[];
}

async function main(): Promise<void> {
  const phases = selectedPhases();
  const startedAt = new Date();
  const loadBefore = os.loadavg();
  log(
    `mode: ${QUICK ? 'quick' : 'full'}${phases.length < 5 ? `, phases: ${phases.join(', ')}` : ''}`,
  );
  const dir = await mkdtemp(path.join(os.tmpdir(), 'context-server-bench-'));
  const cleanup: (() => Promise<unknown>)[] = [() => rm(dir, { recursive: true, force: true })];
  try {
    const redis = await startRedisServer(dir);
    cleanup.push(() => redis.stop());
    const pg = await startPostgresServer(dir);
    cleanup.push(() => pg.stop());
    const admin = new Client({ connectionString: pg.url });
    await admin.connect();
    await admin.query('CREATE DATABASE bench');
    await admin.end();
    const databaseUrl = Object.assign(new URL(pg.url), { pathname: '/bench' }).toString();

    const modelDir = path.join(dir, 'models');
    const benchModelFile = await prepareModelDir(path.join(REPO_ROOT, 'models'), modelDir);
    const profileDir = path.join(REPO_ROOT, 'bench', 'profiles');
    const snapshotDir = path.join(os.tmpdir(), 'context-server-bench-snapshots');
    if (CPU_PROF) {
      await mkdir(profileDir, { recursive: true });
    }
    if (HEAP_SNAPSHOT) {
      await mkdir(snapshotDir, { recursive: true });
      log(`heap snapshots go to ${snapshotDir}`);
    }
    log('starting the server');
    const server = await startBenchServer({
      nodeArgs: [
        ...SERVER_NODE_ARGS,
        ...(CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []),
        ...(HEAP_SNAPSHOT
          ? ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${profileDir}`]
          : []),
      ],
      root: SERVER_ROOT && path.resolve(SERVER_ROOT),
      env: {
        NODE_ENV: 'production',
        LOG_LEVEL: 'warn',
        DATABASE_URL: databaseUrl,
        DATABASE_POOL_SIZE: String(DB_POOL_SIZE),
        REDIS_URL: redis.url,
        JWT_SECRET,
        ENCRYPTION_KEYS,
        ADMIN_PASSWORD,
        MODEL_DIR: modelDir,
        INFERENCE_DEVICE: 'cpu',
        MODEL_RATE_LIMIT_PER_MINUTE: '10000000',
        LOGIN_RATE_LIMIT_PER_MINUTE: '100000',
        LOGIN_IP_RATE_LIMIT_PER_MINUTE: '1000000',
        WS_MAX_SUBSCRIPTIONS_PER_CONNECTION: String(SUBSCRIPTIONS_PER_CONNECTION),
        WS_MAX_CONNECTIONS_PER_USER: '100',
        // No background sweep: the SQL counts must see only the request's own statements.
        CONTEXT_SWEEP_INTERVAL_MS: '0',
        ...SERVER_ENV,
      },
    });
    cleanup.push(async () => {
      await server.stop();
      // The server logs at warn: anything it said is worth a look.
      const logFile = path.join(os.tmpdir(), 'context-server-bench-server.log');
      await writeFile(logFile, server.output());
      if (server.output().trim()) {
        log(`the server's output is in ${logFile}`);
      }
    });

    const login = async (username: string, password: string) =>
      (
        await gql<{ login: { token: string } }>(
          server.url,
          'mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token } }',
          { u: username, p: password },
        )
      ).login.token;
    const adminToken = await login('admin', ADMIN_PASSWORD);
    const { createUser } = await gql(
      server.url,
      'mutation($input: CreateUserInput!) { createUser(input: $input) { id } }',
      { input: { username: 'bench-user', password: 'bench-user-password', role: 'USER' } },
      adminToken,
    );
    const token = await login('bench-user', 'bench-user-password');
    const pool = new Pool({ connectionString: databaseUrl, max: 2 });
    cleanup.push(() => pool.end());
    const [sentiment] = (
      await pool.query<{ id: string }>(`SELECT id FROM models WHERE name = 'sentiment-afinn'`)
    ).rows;
    log('seeding');
    const seed = await seedContexts(pool, {
      encryptionKeys: ENCRYPTION_KEYS,
      userId: createUser.id as string,
      modelId: sentiment!.id,
      contexts: SEEDED_CONTEXTS,
      historyPerContext: HISTORY_PER_CONTEXT,
    });
    const bench: Bench = {
      server,
      databaseUrl,
      token,
      adminToken,
      sentimentId: sentiment!.id,
      benchModelFile,
      contexts: seed.contexts,
      rows: [],
      details: {},
      executionProvider: 'not measured',
    };

    for (const [name, phase] of Object.entries(PHASES) as [Phase, (typeof PHASES)[Phase]][]) {
      if (phases.includes(name)) {
        log(name);
        await phase.run(bench);
      } else {
        bench.rows.push(
          ...phase.keys.map((key) => ({
            key,
            value: null,
            target: null,
            note: 'skipped (--only)',
          })),
        );
      }
    }
    bench.rows.push({
      key: 'inference.cudaVsCpu',
      value: null,
      target: null,
      note: 'no GPU on this machine (INFERENCE_DEVICE=cpu)',
    });

    const machine = {
      cpu: os.cpus()[0]?.model ?? 'unknown',
      cores: os.cpus().length,
      memoryGb: round(os.totalmem() / 2 ** 30, 1),
      node: process.version,
      platform: `${os.platform()} ${os.release()}`,
      loadAverageBefore: loadBefore.map((l) => round(l)),
      loadAverageAfter: os.loadavg().map((l) => round(l)),
    };
    const { rows, details } = bench;
    const results = {
      mode: QUICK ? 'quick' : 'full',
      phases,
      serverRoot: SERVER_ROOT ? path.resolve(SERVER_ROOT) : null,
      serverEnv: SERVER_ENV,
      timestamp: startedAt.toISOString(),
      elapsedSeconds: round((Date.now() - startedAt.getTime()) / 1000, 1),
      machine,
      executionProvider: bench.executionProvider,
      results: Object.fromEntries(rows.map((r) => [r.key, r.value])),
      targets: Object.fromEntries(rows.map((r) => [r.key, r.target])),
      notes: Object.fromEntries(rows.filter((r) => r.note).map((r) => [r.key, r.note])),
      details,
    };
    await writeResults(path.join(REPO_ROOT, 'bench', 'results.json'), results);
    process.stdout.write(
      `\nmode: ${results.mode}; ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGb} GB, node ${machine.node}; ` +
        `execution provider: ${bench.executionProvider}; load average ${machine.loadAverageBefore.join(' ')} → ${machine.loadAverageAfter.join(' ')}\n\n` +
        `${table(rows)}\n\nwritten to bench/results.json (${results.elapsedSeconds} s)\n`,
    );
  } finally {
    for (const step of cleanup.reverse()) {
      await step().catch((error: unknown) => log(`cleanup: ${String(error)}`));
    }
  }
}

/** Fisher–Yates with a fixed-seed LCG: the same order every run. */
function shuffle<T>(items: T[]): void {
  let state = 12_345;
  for (let i = items.length - 1; i > 0; i--) {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    const j = state % (i + 1);
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
}

/**
 * What the server's inference workers create sessions with (src/inference/onnx/worker-source.ts)
 * when INFERENCE_INTRA_OP_THREADS is left at 0, as in this bench.
 */
const RAW_SESSION_OPTIONS = {
  graphOptimizationLevel: 'all',
  executionProviders: ['cpu'],
  intraOpNumThreads: defaultIntraOpThreads(1),
  extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
} as const;

/**
 * The same model in this process with plain onnxruntime-node: the server's session options,
 * the batches the server ran (sizes replayed in turn), no GraphQL, no worker hop.
 */
async function openRawOnnxruntime(file: string, inputs: readonly number[][]) {
  const session = await InferenceSession.create(file, RAW_SESSION_OPTIONS);
  const feeds = new Map<number, Tensor>();
  const feedOf = (size: number) => {
    let feed = feeds.get(size);
    if (!feed) {
      const data = new Float32Array(size * BENCH_INPUT_SIZE);
      for (let r = 0; r < size; r++) {
        data.set(inputs[r % inputs.length]!, r * BENCH_INPUT_SIZE);
      }
      feed = new Tensor('float32', data, [size, BENCH_INPUT_SIZE]);
      feeds.set(size, feed);
    }
    return feed;
  };
  return {
    async replay(
      runs: readonly number[],
      seconds: number,
    ): Promise<{ items: number; runs: number; elapsedMs: number }> {
      for (const size of new Set(runs)) {
        await session.run({ [BENCH_MODEL.input]: feedOf(size) }); // warm-up
      }
      let items = 0;
      let count = 0;
      const started = performance.now();
      while (performance.now() - started < seconds * 1000) {
        const size = runs[count % runs.length]!;
        await session.run({ [BENCH_MODEL.input]: feedOf(size) });
        items += size;
        count++;
      }
      return { items, runs: count, elapsedMs: performance.now() - started };
    },
    close: () => session.release(),
  };
}

/**
 * Waits until the server has served what a load run left behind: autocannon stops sending
 * when its time is up, but requests already queued on a model still run.
 */
async function drained(server: BenchServer): Promise<void> {
  let completed = Number.NaN;
  for (;;) {
    const text = await server.metrics();
    const queued = metricValue(text, 'inference_queue_depth');
    const done = metricValue(text, 'inference_duration_seconds_count');
    if (!(queued > 0) && done === completed) {
      return;
    }
    completed = done;
    // Longer than a batch of the benchmark model, so a run cannot span two looks.
    await new Promise((resolve) => setTimeout(resolve, 600));
  }
}

main().catch((error: unknown) => {
  process.stderr.write(
    `bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exitCode = 1;
});
