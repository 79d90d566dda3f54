import path from 'node:path';
import { z } from 'zod';
import { parseEncryptionKeys } from '../security/field-encryption';

/**
 * Every environment variable the server reads, parsed once and frozen. Nothing else in
 * the code reads `process.env`. The README's configuration table mirrors this schema.
 */

const bool = (fallback: boolean) =>
  z
    .enum(['true', 'false', '1', '0', 'yes', 'no'])
    .optional()
    .transform((v) => (v === undefined ? fallback : v === 'true' || v === '1' || v === 'yes'));

const int = (fallback: number, min: number, max: number) =>
  z.coerce.number().int().min(min).max(max).default(fallback);

const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v));

const schema = z.object({
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  HOST: z.string().default('0.0.0.0'),
  PORT: int(4000, 0, 65535),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),

  /** Where the embedded default keeps its database, keys and generated secrets. */
  DATA_DIR: z.string().default('./.data'),
  DATABASE_URL: optionalString.pipe(z.url().optional()),
  DATABASE_POOL_SIZE: int(10, 1, 1000),
  /** Port of the embedded PostgreSQL; 0 picks a free one at each start. */
  EMBEDDED_PG_PORT: int(0, 0, 65535),
  /** Bound on every SQL statement so a request never hangs on a stuck database. */
  DB_STATEMENT_TIMEOUT_MS: int(15_000, 100, 600_000), // 15 s
  REDIS_URL: optionalString.pipe(z.url().optional()),

  JWT_SECRET: optionalString,
  JWT_TTL_SECONDS: int(3600, 60, 30 * 24 * 3600), // 1 h
  ADMIN_USERNAME: z.string().default('admin'),
  ADMIN_PASSWORD: optionalString.pipe(z.string().min(8).max(256).optional()),

  /** `kid:base64key,…` (32-byte keys): the first encrypts, all decrypt. Generated when embedded. */
  ENCRYPTION_KEYS: optionalString,
  CONTEXT_MAX_BYTES: int(100 * 1024, 1024, 10 * 1024 * 1024), // 100 KB
  CONTEXT_TTL_SECONDS: int(30 * 24 * 3600, 60, 10 * 365 * 24 * 3600), // 30 days
  /** What to do with credential-like keys in a context: refuse the write, or drop them. */
  CONTEXT_SECRET_POLICY: z.enum(['reject', 'strip']).default('reject'),
  CONTEXT_CACHE_TTL_SECONDS: int(300, 1, 24 * 3600), // 5 min
  /**
   * How long a replica may keep user and model rows it read (the caller's row is needed on
   * every request). Changes reach every replica at once through pub/sub; this bounds how long
   * a copy can outlive a lost message. 0 reads the database every time.
   */
  ROW_CACHE_TTL_MS: int(30_000, 0, 3600 * 1000), // 30 s
  /** How often expired contexts are deleted; 0 turns the sweeper off. */
  CONTEXT_SWEEP_INTERVAL_MS: int(60_000, 0, 24 * 3600 * 1000), // 1 min
  CONTEXT_SWEEP_BATCH_SIZE: int(500, 1, 10_000),
  /** Most items one `updateContexts` call may carry. */
  MAX_BATCH_UPDATES: int(100, 1, 1000),
  /** History entries kept per context; older ones are deleted as new ones arrive. */
  HISTORY_LIMIT: int(100, 1, 100_000),

  /** Where ONNX models live; registered paths must stay inside it. */
  MODEL_DIR: z.string().default('./models'),
  INFERENCE_DEVICE: z.enum(['auto', 'cuda', 'cpu']).default('auto'),
  /** Worker threads running model sessions (one pool per process). */
  INFERENCE_WORKERS: int(1, 1, 64),
  /**
   * onnxruntime intra-op threads per session; 0: the cores less one (kept for the event
   * loop), shared among the workers, at least 1.
   */
  INFERENCE_INTRA_OP_THREADS: int(0, 0, 256),
  /** Server defaults for models that set none. */
  MAX_BATCH_SIZE: int(32, 1, 1024),
  MAX_QUEUE_DELAY_MS: int(2, 0, 1000), // 2 ms
  /** Requests allowed to wait per model before MODEL_UNAVAILABLE. */
  MAX_QUEUED_REQUESTS: int(10_000, 1, 1_000_000),
  MODEL_RATE_LIMIT_PER_MINUTE: int(6_000, 1, 10_000_000),
  INFERENCE_CACHE_TTL_SECONDS: int(300, 1, 30 * 24 * 3600), // 5 min
  INFERENCE_TIMEOUT_MS: int(30_000, 100, 600_000), // 30 s
  /** History turns a generation model sees as conversation. */
  HISTORY_TURNS_IN_PROMPT: int(4, 0, 100),
  /** Largest text input of a text model, in characters. */
  MAX_INPUT_CHARS: int(20_000, 1, 1_000_000),
  REMOTE_TIMEOUT_MS: int(10_000, 100, 600_000), // 10 s
  REMOTE_RETRIES: int(2, 0, 10),
  /**
   * Credentials for remote model servers, kept out of the database: a JSON object from
   * endpoint origin to Authorization header value, e.g. {"https://kserve.internal":"Bearer …"}.
   */
  REMOTE_AUTHORIZATION: optionalString.pipe(
    z
      .string()
      .optional()
      .transform((v, ctx) => {
        if (v === undefined) {
          return {};
        }
        try {
          const parsed: unknown = JSON.parse(v);
          if (
            parsed &&
            typeof parsed === 'object' &&
            !Array.isArray(parsed) &&
            Object.values(parsed).every((h) => typeof h === 'string')
          ) {
            // Keys are compared with endpoint origins: normalise "https://h/" to "https://h".
            return Object.fromEntries(
              Object.entries(parsed as Record<string, string>).map(([k, v]) => [
                new URL(k).origin,
                v,
              ]),
            );
          }
        } catch {
          // reported below
        }
        ctx.addIssue({ code: 'custom', message: 'must be a JSON object of origin → header value' });
        return z.NEVER;
      }),
  ),

  /** Live messages a subscriber may fall behind by before its stream is closed. */
  SUBSCRIPTION_BUFFER: int(1_000, 1, 1_000_000),
  WS_MAX_CONNECTIONS_PER_USER: int(50, 1, 100_000),
  WS_MAX_SUBSCRIPTIONS_PER_CONNECTION: int(100, 1, 100_000),
  /** How often idle WebSockets are pinged; one missed pong closes the socket. */
  WS_KEEPALIVE_MS: int(30_000, 1_000, 600_000), // 30 s

  /** Query limits: each refusal is QUERY_TOO_COMPLEX naming the limit. */
  GRAPHQL_MAX_DEPTH: int(12, 1, 1000),
  GRAPHQL_MAX_ALIASES: int(30, 0, 10_000),
  GRAPHQL_MAX_DIRECTIVES: int(50, 0, 10_000),
  GRAPHQL_MAX_TOKENS: int(5_000, 10, 1_000_000),
  /** Fields fetched, counting list sizes from `first`/`last`. */
  GRAPHQL_MAX_COST: int(50_000, 1, 100_000_000),
  /** Several operations in one HTTP request (a JSON array): off unless asked for. */
  GRAPHQL_BATCHING: bool(false),
  MAX_BODY_BYTES: int(1024 * 1024, 1024, 100 * 1024 * 1024), // 1 MB
  /**
   * HTTP requests started per turn of the event loop; more wait for the next turns, so a
   * saturated server still serves timers, WebSockets and model results between them.
   */
  HTTP_REQUESTS_PER_TURN: int(2, 1, 10_000),
  /** Comma-separated origins allowed by CORS; unset: no cross-origin access. `*`: any. */
  CORS_ORIGINS: optionalString,
  /** Express `trust proxy` (hops or a list), so rate limits see the client's address. */
  TRUST_PROXY: optionalString,
  /** Login attempts per minute per username and per client address. */
  LOGIN_RATE_LIMIT_PER_MINUTE: int(10, 1, 100_000),
  LOGIN_IP_RATE_LIMIT_PER_MINUTE: int(60, 1, 1_000_000),

  /** How long an automatic persisted query stays registered. */
  APQ_TTL_SECONDS: int(7 * 24 * 3600, 60, 365 * 24 * 3600), // 7 days
  /** Accept only the operations of PERSISTED_QUERIES_FILE (trusted documents). */
  GRAPHQL_PERSISTED_ONLY: bool(false),
  /** A persisted-query manifest (Apollo's format, or { sha256: query }). */
  PERSISTED_QUERIES_FILE: optionalString,

  /** OTLP/HTTP collector; tracing is off when unset. */
  OTEL_EXPORTER_OTLP_ENDPOINT: optionalString.pipe(z.url().optional()),
  /** Fraction of traces recorded (0–1). */
  OTEL_TRACES_SAMPLE_RATIO: z.coerce.number().min(0).max(1).default(1),
  OTEL_SERVICE_NAME: z.string().default('context-server'),

  /** Rows per transaction of `npm run rotate-keys`. */
  ROTATE_BATCH_SIZE: int(500, 1, 100_000),

  /** Largest `first` accepted by any connection field. */
  MAX_PAGE_SIZE: int(100, 1, 1000),
  /** Introspection and GraphiQL default to on outside production. */
  GRAPHQL_INTROSPECTION: z.enum(['true', 'false']).optional(),
  GRAPHIQL: z.enum(['true', 'false']).optional(),
  /** How long SIGTERM waits for in-flight work before the process exits anyway. */
  SHUTDOWN_GRACE_MS: int(10_000, 0, 300_000), // 10 s
  METRICS: bool(true),
});

export type Env = z.infer<typeof schema>;

/** The name of every variable the server reads. */
export const ENV_VARIABLES = Object.keys(schema.shape) as (keyof Env)[];

export interface Config {
  readonly nodeEnv: Env['NODE_ENV'];
  readonly production: boolean;
  readonly host: string;
  readonly port: number;
  readonly logLevel: Env['LOG_LEVEL'];
  readonly dataDir: string;
  readonly database: {
    /** Unset: the process starts an embedded PostgreSQL under `dataDir`. */
    readonly url: string | undefined;
    readonly poolSize: number;
    readonly embeddedPort: number;
    readonly statementTimeoutMs: number;
  };
  readonly redisUrl: string | undefined;
  /** How long user and model rows may be kept per replica; 0 turns the copies off. */
  readonly rowCacheTtlMs: number;
  readonly auth: {
    /** Unset with the embedded database: a random secret persisted in `dataDir`. */
    readonly jwtSecret: string | undefined;
    readonly jwtTtlSeconds: number;
    readonly adminUsername: string;
    readonly adminPassword: string | undefined;
  };
  /** Unset with the embedded database: a key generated and persisted in `dataDir`. */
  readonly encryptionKeys: string | undefined;
  readonly rotateBatchSize: number;
  readonly contexts: {
    readonly maxBytes: number;
    readonly defaultTtlSeconds: number;
    readonly secretPolicy: 'reject' | 'strip';
    readonly cacheTtlSeconds: number;
    readonly sweepIntervalMs: number;
    readonly sweepBatchSize: number;
    readonly maxBatchUpdates: number;
    readonly historyLimit: number;
  };
  readonly inference: {
    readonly modelDir: string;
    readonly device: 'auto' | 'cuda' | 'cpu';
    readonly workers: number;
    readonly intraOpThreads: number;
    readonly maxBatchSize: number;
    readonly maxQueueDelayMs: number;
    readonly maxQueued: number;
    readonly defaultRateLimitPerMinute: number;
    readonly defaultCacheTtlSeconds: number;
    readonly timeoutMs: number;
    readonly historyTurns: number;
    readonly maxInputChars: number;
    readonly remoteTimeoutMs: number;
    readonly remoteRetries: number;
    /** Endpoint origin → Authorization header value for REMOTE models. */
    readonly remoteAuthorization: Readonly<Record<string, string>>;
  };
  readonly subscriptions: {
    readonly maxBuffered: number;
    readonly maxConnectionsPerUser: number;
    readonly maxSubscriptionsPerConnection: number;
    readonly keepAliveMs: number;
  };
  readonly http: {
    readonly maxBodyBytes: number;
    /** HTTP requests started per turn of the event loop (the rest wait for the next turns). */
    readonly requestsPerTurn: number;
    readonly corsOrigins: readonly string[];
    readonly trustProxy: string | undefined;
    readonly loginPerUsernamePerMinute: number;
    readonly loginPerIpPerMinute: number;
  };
  readonly graphql: {
    readonly maxPageSize: number;
    readonly batching: boolean;
    readonly apqTtlSeconds: number;
    /** Set: only these operations run (trusted documents). */
    readonly persistedQueriesFile: string | undefined;
    readonly persistedOnly: boolean;
    readonly limits: {
      readonly maxDepth: number;
      readonly maxAliases: number;
      readonly maxDirectives: number;
      readonly maxTokens: number;
      readonly maxCost: number;
    };
    readonly introspection: boolean;
    readonly graphiql: boolean;
  };
  readonly tracing: {
    readonly endpoint: string | undefined;
    readonly sampleRatio: number;
    readonly serviceName: string;
  };
  readonly shutdownGraceMs: number;
  readonly metrics: boolean;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Parses `source` (default `process.env`); throws a {@link ConfigError} naming each bad variable. */
export function loadConfig(source: NodeJS.ProcessEnv = process.env): Config {
  const parsed = schema.safeParse(source);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`Invalid configuration:\n  ${problems.join('\n  ')}`);
  }
  const env = parsed.data;
  const production = env.NODE_ENV === 'production';

  if (env.JWT_SECRET !== undefined && production && Buffer.byteLength(env.JWT_SECRET) < 32) {
    throw new ConfigError('Invalid configuration:\n  JWT_SECRET: must be at least 32 bytes');
  }
  // Replicas sharing a database must share their secrets, so they cannot be generated.
  for (const name of ['JWT_SECRET', 'ENCRYPTION_KEYS'] as const) {
    if (env.DATABASE_URL !== undefined && env[name] === undefined) {
      throw new ConfigError(`Invalid configuration:\n  ${name}: required when DATABASE_URL is set`);
    }
  }
  if (env.GRAPHQL_PERSISTED_ONLY && env.PERSISTED_QUERIES_FILE === undefined) {
    throw new ConfigError(
      'Invalid configuration:\n  PERSISTED_QUERIES_FILE: required when GRAPHQL_PERSISTED_ONLY is true',
    );
  }
  if (env.ENCRYPTION_KEYS !== undefined) {
    try {
      parseEncryptionKeys(env.ENCRYPTION_KEYS);
    } catch (error) {
      throw new ConfigError(
        `Invalid configuration:\n  ENCRYPTION_KEYS: ${(error as Error).message}`,
      );
    }
  }

  return Object.freeze({
    nodeEnv: env.NODE_ENV,
    production,
    host: env.HOST,
    port: env.PORT,
    logLevel: env.LOG_LEVEL,
    dataDir: path.resolve(env.DATA_DIR),
    database: Object.freeze({
      url: env.DATABASE_URL,
      poolSize: env.DATABASE_POOL_SIZE,
      embeddedPort: env.EMBEDDED_PG_PORT,
      statementTimeoutMs: env.DB_STATEMENT_TIMEOUT_MS,
    }),
    redisUrl: env.REDIS_URL,
    rowCacheTtlMs: env.ROW_CACHE_TTL_MS,
    auth: Object.freeze({
      jwtSecret: env.JWT_SECRET,
      jwtTtlSeconds: env.JWT_TTL_SECONDS,
      adminUsername: env.ADMIN_USERNAME,
      adminPassword: env.ADMIN_PASSWORD,
    }),
    encryptionKeys: env.ENCRYPTION_KEYS,
    rotateBatchSize: env.ROTATE_BATCH_SIZE,
    contexts: Object.freeze({
      maxBytes: env.CONTEXT_MAX_BYTES,
      defaultTtlSeconds: env.CONTEXT_TTL_SECONDS,
      secretPolicy: env.CONTEXT_SECRET_POLICY,
      cacheTtlSeconds: env.CONTEXT_CACHE_TTL_SECONDS,
      sweepIntervalMs: env.CONTEXT_SWEEP_INTERVAL_MS,
      sweepBatchSize: env.CONTEXT_SWEEP_BATCH_SIZE,
      maxBatchUpdates: env.MAX_BATCH_UPDATES,
      historyLimit: env.HISTORY_LIMIT,
    }),
    inference: Object.freeze({
      modelDir: path.resolve(env.MODEL_DIR),
      device: env.INFERENCE_DEVICE,
      workers: env.INFERENCE_WORKERS,
      intraOpThreads: env.INFERENCE_INTRA_OP_THREADS,
      maxBatchSize: env.MAX_BATCH_SIZE,
      maxQueueDelayMs: env.MAX_QUEUE_DELAY_MS,
      maxQueued: env.MAX_QUEUED_REQUESTS,
      defaultRateLimitPerMinute: env.MODEL_RATE_LIMIT_PER_MINUTE,
      defaultCacheTtlSeconds: env.INFERENCE_CACHE_TTL_SECONDS,
      timeoutMs: env.INFERENCE_TIMEOUT_MS,
      historyTurns: env.HISTORY_TURNS_IN_PROMPT,
      maxInputChars: env.MAX_INPUT_CHARS,
      remoteTimeoutMs: env.REMOTE_TIMEOUT_MS,
      remoteRetries: env.REMOTE_RETRIES,
      remoteAuthorization: env.REMOTE_AUTHORIZATION,
    }),
    subscriptions: Object.freeze({
      maxBuffered: env.SUBSCRIPTION_BUFFER,
      maxConnectionsPerUser: env.WS_MAX_CONNECTIONS_PER_USER,
      maxSubscriptionsPerConnection: env.WS_MAX_SUBSCRIPTIONS_PER_CONNECTION,
      keepAliveMs: env.WS_KEEPALIVE_MS,
    }),
    http: Object.freeze({
      maxBodyBytes: env.MAX_BODY_BYTES,
      requestsPerTurn: env.HTTP_REQUESTS_PER_TURN,
      corsOrigins: (env.CORS_ORIGINS ?? '')
        .split(',')
        .map((o) => o.trim())
        .filter(Boolean),
      trustProxy: env.TRUST_PROXY,
      loginPerUsernamePerMinute: env.LOGIN_RATE_LIMIT_PER_MINUTE,
      loginPerIpPerMinute: env.LOGIN_IP_RATE_LIMIT_PER_MINUTE,
    }),
    graphql: Object.freeze({
      maxPageSize: env.MAX_PAGE_SIZE,
      batching: env.GRAPHQL_BATCHING,
      apqTtlSeconds: env.APQ_TTL_SECONDS,
      persistedQueriesFile: env.PERSISTED_QUERIES_FILE,
      persistedOnly: env.GRAPHQL_PERSISTED_ONLY,
      limits: Object.freeze({
        maxDepth: env.GRAPHQL_MAX_DEPTH,
        maxAliases: env.GRAPHQL_MAX_ALIASES,
        maxDirectives: env.GRAPHQL_MAX_DIRECTIVES,
        maxTokens: env.GRAPHQL_MAX_TOKENS,
        maxCost: env.GRAPHQL_MAX_COST,
      }),
      introspection: env.GRAPHQL_INTROSPECTION ? env.GRAPHQL_INTROSPECTION === 'true' : !production,
      graphiql: env.GRAPHIQL ? env.GRAPHIQL === 'true' : !production,
    }),
    tracing: Object.freeze({
      endpoint: env.OTEL_EXPORTER_OTLP_ENDPOINT,
      sampleRatio: env.OTEL_TRACES_SAMPLE_RATIO,
      serviceName: env.OTEL_SERVICE_NAME,
    }),
    shutdownGraceMs: env.SHUTDOWN_GRACE_MS,
    metrics: env.METRICS,
  });
}
