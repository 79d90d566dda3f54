import { randomUUID } from 'node:crypto';
import { createClient as createWsClient, type Client as WsClient } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { WebSocket } from 'ws';
import { codes } from '../support/graphql-client';
import { startTestApp, type TestApp } from '../support/test-app';

/**
 * `/metrics` as Prometheus scrapes it: the names follow Prometheus' conventions, and one flow
 * through HTTP, GraphQL, the database, both caches, inference and graphql-ws moves every series
 * the dashboard and the alerts read.
 */

const WAIT = { timeout: 10_000, interval: 20 };

const MODELS = 'query MetricsModels { models { id name version } }';
const CREATE_CONTEXT = `mutation MetricsCreateContext($input: CreateContextInput!) {
  createContext(input: $input) { id } }`;
const INFER = `mutation MetricsInfer($m: ID!, $input: JSON!, $c: ID) {
  infer(modelId: $m, input: $input, contextId: $c) { cached batchSize } }`;
const BAD_INFER = `mutation MetricsBadInfer($m: ID!, $input: JSON!) {
  infer(modelId: $m, input: $input) { cached } }`;
const READ_CONTEXT = 'query MetricsReadContext($id: ID!) { context(id: $id) { id } }';
const HISTORY = 'subscription($c: ID!) { contextHistory(contextId: $c) { sequence } }';

interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

interface Scrape {
  readonly contentType: string;
  /** Metric family name → its `# TYPE`. */
  readonly types: ReadonlyMap<string, string>;
  readonly samples: readonly Sample[];
}

const LABEL = /([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g;
const SAMPLE = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/;

/** The text exposition format, as far as these assertions need it. */
function parseExposition(text: string): Omit<Scrape, 'contentType'> {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) {
      types.set(type[1]!, type[2]!);
      continue;
    }
    const sample = line.startsWith('#') ? null : SAMPLE.exec(line);
    if (sample) {
      const labels = Object.fromEntries(
        [...(sample[2] ?? '').matchAll(LABEL)].map((m) => [m[1]!, m[2]!]),
      );
      samples.push({ name: sample[1]!, labels, value: Number(sample[3]) });
    }
  }
  return { types, samples };
}

/** The sum of every sample named `name` whose labels include `match`. */
function total(scrape: Scrape, name: string, match: Record<string, string> = {}): number {
  return scrape.samples
    .filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

function series(scrape: Scrape, name: string, match: Record<string, string> = {}): Sample[] {
  return scrape.samples.filter(
    (s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v),
  );
}

/**
 * prom-client's default Node.js metrics name three gauges `_total`; they are the library's
 * (https://github.com/siimon/prom-client/blob/master/lib/metrics/processHandles.js), not ours.
 */
const UPSTREAM_TOTAL_GAUGES = new Set([
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
]);

/** Units a name may end in that contradict what a value of that family can be. */
const FOREIGN_UNITS =
  /_(ms|millis|milliseconds|microseconds|nanoseconds|minutes|hours|kb|mb|gb|kilobytes|megabytes|percent)$/;

describe('/metrics', () => {
  let t: TestApp;
  let metricsUrl: string;
  let before: Scrape;
  /** Taken while the subscription is open. */
  let during: Scrape;
  /** Taken after the WebSocket closed. */
  let after: Scrape;
  const model: Record<string, { id: string; label: string }> = {};
  let contextId: string;
  let ws: WsClient | undefined;

  const scrape = async (): Promise<Scrape> => {
    const res = await fetch(metricsUrl);
    expect(res.status).toBe(200);
    return {
      contentType: res.headers.get('content-type') ?? '',
      ...parseExposition(await res.text()),
    };
  };

  beforeAll(async () => {
    t = await startTestApp({ env: { CONTEXT_SWEEP_INTERVAL_MS: '0' } });
    metricsUrl = `${new URL(t.app.url).origin}/metrics`;
    before = await scrape();

    const models = await t.gql(MODELS, {}, t.adminToken);
    expect(models.errors).toBeUndefined();
    for (const m of models.data!.models) {
      model[m.name] = { id: m.id, label: `${m.name}@${m.version}` };
    }
    const sentiment = model['sentiment-afinn']!;
    const trigram = model['moby-char-trigram']!;

    const created = await t.gql(
      CREATE_CONTEXT,
      { input: { model: { modelId: trigram.id } } },
      t.adminToken,
    );
    expect(created.errors).toBeUndefined();
    contextId = created.data!.createContext.id;

    const bad = await t.gql(BAD_INFER, { m: 'not-a-uuid', input: 'x' }, t.adminToken);
    expect(codes(bad)).toEqual(['BAD_USER_INPUT']);

    // A text no other test sends: the first call misses the shared result cache.
    const text = `a lovely and happy day ${randomUUID()}`;
    const first = await t.gql(INFER, { m: sentiment.id, input: text }, t.adminToken);
    const second = await t.gql(INFER, { m: sentiment.id, input: text }, t.adminToken);
    expect(first.errors).toBeUndefined();
    expect([first.data!.infer.cached, second.data!.infer.cached]).toEqual([false, true]);

    const generated = await t.gql(
      INFER,
      { m: trigram.id, input: 'call me ishmael', c: contextId },
      t.adminToken,
    );
    expect(generated.errors).toBeUndefined();

    for (let i = 0; i < 2; i += 1) {
      const read = await t.gql(READ_CONTEXT, { id: contextId }, t.adminToken);
      expect(read.data?.context?.id).toBe(contextId);
    }

    ws = createWsClient({
      url: t.app.url.replace(/^http/, 'ws'),
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${t.adminToken}` },
      retryAttempts: 0,
      lazy: true,
    });
    const received: unknown[] = [];
    ws.subscribe(
      { query: HISTORY, variables: { c: contextId } },
      {
        next: (result) => void received.push(result),
        error: () => undefined,
        complete: () => undefined,
      },
    );
    // The replay of the one stored turn.
    await vi.waitFor(() => expect(received).toHaveLength(1), WAIT);
    during = await scrape();

    await ws.dispose();
    ws = undefined;
    await vi.waitFor(async () => expect(total(await scrape(), 'ws_connections')).toBe(0), WAIT);
    after = await scrape();
  });
  afterAll(async () => {
    await ws?.dispose();
    await t?.stop();
  });

  const moved = (name: string, match: Record<string, string> = {}) =>
    total(after, name, match) - total(before, name, match);

  describe('the exposition', () => {
    it('is served as Prometheus text format 0.0.4', () => {
      expect(after.contentType).toMatch(/^text\/plain; version=0\.0\.4; charset=utf-8$/);
      expect(after.types.size).toBeGreaterThan(20);
    });

    it('names every family in snake_case, counters and only counters ending in _total', () => {
      for (const [name, type] of after.types) {
        expect(name, name).toMatch(/^[a-z][a-z0-9]*(_[a-z0-9]+)*$/);
        if (type === 'counter') {
          expect(name, `${name} is a counter`).toMatch(/_total$/);
        } else if (!UPSTREAM_TOTAL_GAUGES.has(name)) {
          expect(name, `${name} is a ${type}`).not.toMatch(/_total$/);
        }
      }
    });

    it('keeps durations as histograms in seconds and names no unit a family cannot hold', () => {
      for (const [name, type] of after.types) {
        expect(name, name).not.toMatch(FOREIGN_UNITS);
        // _count, _sum and _bucket are the series a histogram adds; a family name never ends so.
        expect(name, name).not.toMatch(/_(count|sum|bucket)$/);
        if (/duration|latency/.test(name)) {
          expect(type, name).toBe('histogram');
          expect(name, name).toMatch(/_seconds$/);
        }
        if (/memory|heap|size/.test(name) && !/batch_size/.test(name)) {
          expect(name, `${name} measures memory`).toMatch(/_bytes(_total)?$/);
        }
      }
      // The server's own latencies, by name.
      for (const name of [
        'http_request_duration_seconds',
        'graphql_operation_duration_seconds',
        'inference_duration_seconds',
      ]) {
        expect(after.types.get(name), name).toBe('histogram');
      }
      // A count of requests per run: unitless, so no _bytes or _seconds.
      expect(after.types.get('inference_batch_size')).toBe('histogram');
    });
  });

  describe('after a flow through every layer', () => {
    it('counts HTTP requests and their latency by route', () => {
      expect(moved('http_requests_total', { route: '/graphql', method: 'POST' })).toBe(8);
      expect(
        moved('http_requests_total', { route: '/graphql', status_code: '200' }),
      ).toBeGreaterThan(0);
      expect(moved('http_request_duration_seconds_count', { route: '/graphql' })).toBe(
        moved('http_requests_total', { route: '/graphql' }),
      );
      expect(moved('http_requests_total', { route: '/metrics' })).toBeGreaterThan(0);
    });

    it('counts GraphQL operations by name, type and outcome, with their latency', () => {
      const query = {
        operation_name: 'MetricsModels',
        operation_type: 'query',
        outcome: 'success',
      };
      const mutation = {
        operation_name: 'MetricsCreateContext',
        operation_type: 'mutation',
        outcome: 'success',
      };
      const failed = {
        operation_name: 'MetricsBadInfer',
        operation_type: 'mutation',
        outcome: 'error',
      };
      expect(moved('graphql_operations_total', query)).toBe(1);
      expect(moved('graphql_operations_total', mutation)).toBe(1);
      expect(moved('graphql_operations_total', failed)).toBe(1);
      expect(moved('graphql_operations_total', { operation_name: 'MetricsInfer' })).toBe(3);
      expect(moved('graphql_operations_total', { operation_name: 'MetricsReadContext' })).toBe(2);
      for (const labels of [query, mutation, failed]) {
        expect(moved('graphql_operation_duration_seconds_count', labels)).toBe(1);
      }
    });

    it('counts GraphQL errors by code', () => {
      expect(moved('graphql_errors_total', { code: 'BAD_USER_INPUT' })).toBe(1);
    });

    it('counts SQL statements and reports the pool by state', () => {
      expect(moved('db_queries_total')).toBeGreaterThan(0);
      expect(total(after, 'db_pool_connections', { state: 'total' })).toBeGreaterThan(0);
      for (const state of ['total', 'idle', 'waiting']) {
        expect(series(after, 'db_pool_connections', { state }), state).toHaveLength(1);
      }
    });

    it('counts context cache hits', () => {
      expect(moved('context_cache_requests_total', { result: 'hit' })).toBeGreaterThanOrEqual(1);
    });

    it('times inference per model as name@version, cached calls apart', () => {
      const sentiment = model['sentiment-afinn']!.label;
      const trigram = model['moby-char-trigram']!.label;
      expect(
        moved('inference_duration_seconds_count', { model: sentiment, outcome: 'success' }),
      ).toBe(1);
      expect(
        moved('inference_duration_seconds_count', { model: sentiment, outcome: 'cached' }),
      ).toBe(1);
      expect(
        moved('inference_duration_seconds_count', { model: trigram, outcome: 'success' }),
      ).toBe(1);
    });

    it('observes the batch size of each model run', () => {
      expect(moved('inference_batch_size_count', { model: model['sentiment-afinn']!.label })).toBe(
        1,
      );
      expect(
        moved('inference_batch_size_count', { model: model['moby-char-trigram']!.label }),
      ).toBeGreaterThanOrEqual(1);
    });

    it('counts result cache hits and misses per model', () => {
      const sentiment = model['sentiment-afinn']!.label;
      expect(moved('inference_cache_requests_total', { model: sentiment, result: 'miss' })).toBe(1);
      expect(moved('inference_cache_requests_total', { model: sentiment, result: 'hit' })).toBe(1);
    });

    it('reports the queue depth of every loaded model', () => {
      // NOTE: the series is labelled with the model's id, where every other inference series
      // uses name@version (src/server/app.ts, beforeScrape); either identifies the model here.
      for (const name of ['sentiment-afinn', 'moby-char-trigram']) {
        const { id, label } = model[name]!;
        const depth = series(after, 'inference_queue_depth').filter(
          (s) => s.labels.model === id || s.labels.model === label,
        );
        expect(depth, name).toHaveLength(1);
        expect(depth[0]!.value).toBe(0);
      }
    });

    it('counts open WebSockets and subscriptions while they last, and the messages sent', () => {
      expect(total(during, 'ws_connections') - total(before, 'ws_connections')).toBe(1);
      expect(
        total(during, 'graphql_subscriptions_active') -
          total(before, 'graphql_subscriptions_active'),
      ).toBe(1);
      expect(moved('graphql_subscription_messages_total')).toBe(1);
      expect(total(after, 'ws_connections')).toBe(total(before, 'ws_connections'));
      expect(total(after, 'graphql_subscriptions_active')).toBe(
        total(before, 'graphql_subscriptions_active'),
      );
    });
  });
});
