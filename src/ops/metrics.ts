import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * One registry per process (not prom-client's global one), so tests can build servers side
 * by side without "metric already registered" clashes.
 */
export interface Metrics {
  readonly registry: Registry;
  readonly httpRequests: Counter<'method' | 'route' | 'status_code'>;
  readonly httpDuration: Histogram<'method' | 'route' | 'status_code'>;
  readonly graphqlOperations: Counter<'operation_name' | 'operation_type' | 'outcome'>;
  readonly graphqlDuration: Histogram<'operation_name' | 'operation_type' | 'outcome'>;
  readonly graphqlErrors: Counter<'code'>;
  readonly sweptContexts: Counter;
  readonly dbQueries: Counter;
  readonly inferenceDuration: Histogram<'model' | 'outcome'>;
  readonly inferenceBatchSize: Histogram<'model'>;
  readonly inferenceCache: Counter<'model' | 'result'>;
  readonly inferenceThrottled: Counter<'model'>;
  readonly inferenceQueueDepth: Gauge<'model'>;
  readonly contextCache: Counter<'result'>;
  readonly rowCache: Counter<'table' | 'result'>;
  readonly dbPool: Gauge<'state'>;
  readonly wsConnections: Gauge;
  readonly subscriptionsActive: Gauge;
  readonly subscriptionMessages: Counter;
  readonly subscriptionsClosed: Counter<'reason'>;
}

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    httpRequests: new Counter({
      name: 'http_requests_total',
      help: 'HTTP requests by method, route and status code',
      labelNames: ['method', 'route', 'status_code'],
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request latency',
      labelNames: ['method', 'route', 'status_code'],
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    graphqlOperations: new Counter({
      name: 'graphql_operations_total',
      help: 'GraphQL operations by name, type and outcome (success or error)',
      labelNames: ['operation_name', 'operation_type', 'outcome'],
      registers: [registry],
    }),
    graphqlDuration: new Histogram({
      name: 'graphql_operation_duration_seconds',
      help: 'GraphQL operation latency from request to response',
      labelNames: ['operation_name', 'operation_type', 'outcome'],
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    graphqlErrors: new Counter({
      name: 'graphql_errors_total',
      help: 'GraphQL errors returned to clients, by extensions.code',
      labelNames: ['code'],
      registers: [registry],
    }),
    inferenceDuration: new Histogram({
      name: 'inference_duration_seconds',
      help: 'infer latency by model (name@version) and outcome (success, cached, error)',
      labelNames: ['model', 'outcome'],
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    inferenceBatchSize: new Histogram({
      name: 'inference_batch_size',
      help: 'Requests (or sequences, for generation steps) per model run',
      labelNames: ['model'],
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
      registers: [registry],
    }),
    inferenceCache: new Counter({
      name: 'inference_cache_requests_total',
      help: 'Result cache lookups by model and result (hit, miss)',
      labelNames: ['model', 'result'],
      registers: [registry],
    }),
    inferenceThrottled: new Counter({
      name: 'inference_throttled_total',
      help: 'infer calls refused by the per-model rate limit',
      labelNames: ['model'],
      registers: [registry],
    }),
    inferenceQueueDepth: new Gauge({
      name: 'inference_queue_depth',
      help: 'Requests waiting for a model run, by model',
      labelNames: ['model'],
      registers: [registry],
    }),
    contextCache: new Counter({
      name: 'context_cache_requests_total',
      help: 'Context cache lookups by result (hit, miss)',
      labelNames: ['result'],
      registers: [registry],
    }),
    rowCache: new Counter({
      name: 'row_cache_requests_total',
      help: "Lookups in the replica's copies of user and model rows, by table and result (hit, miss)",
      labelNames: ['table', 'result'],
      registers: [registry],
    }),
    dbPool: new Gauge({
      name: 'db_pool_connections',
      help: 'PostgreSQL pool connections by state (total, idle, waiting requests)',
      labelNames: ['state'],
      registers: [registry],
    }),
    wsConnections: new Gauge({
      name: 'ws_connections',
      help: 'Open graphql-ws connections on this replica',
      registers: [registry],
    }),
    subscriptionsActive: new Gauge({
      name: 'graphql_subscriptions_active',
      help: 'Running subscriptions on this replica',
      registers: [registry],
    }),
    subscriptionMessages: new Counter({
      name: 'graphql_subscription_messages_total',
      help: 'Subscription results delivered to clients',
      registers: [registry],
    }),
    subscriptionsClosed: new Counter({
      name: 'graphql_subscriptions_closed_total',
      help: 'Subscriptions that ended, by reason (complete, client, error, socket)',
      labelNames: ['reason'],
      registers: [registry],
    }),
    dbQueries: new Counter({
      name: 'db_queries_total',
      help: 'SQL statements sent to PostgreSQL',
      registers: [registry],
    }),
    sweptContexts: new Counter({
      name: 'context_sweeper_deleted_total',
      help: 'Expired contexts deleted by the sweeper on this replica',
      registers: [registry],
    }),
  };
}
