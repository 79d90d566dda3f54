import { type AddressInfo } from 'node:net';
import { type DataSource } from 'typeorm';
import { createMemoryStore, createRedisStore, type KeyValueStore } from '../cache/kv-store';
import { type Config } from '../config/env';
import { openDatabase } from '../db/open-database';
import { ContextCache } from '../domains/context/context.cache';
import { ContextService } from '../domains/context/context.service';
import { startSweeper } from '../domains/context/context.sweeper';
import { HistoryService } from '../domains/history/history.service';
import { HistoryStreams } from '../domains/history/history.stream';
import { ModelService } from '../domains/model/model.service';
import { UserService } from '../domains/user/user.service';
import { InferenceService } from '../inference/infer.service';
import { LoadMonitor } from '../inference/load-monitor';
import { createOnnxRuntime } from '../inference/onnx/onnx-pool';
import { ModelRegistry } from '../inference/registry';
import { createRemoteOpener } from '../inference/remote/remote-backend';
import { ResultCache } from '../inference/result-cache';
import { ModelThrottle } from '../inference/throttle';
import { FieldEncryption, parseEncryptionKeys } from '../security/field-encryption';
import { createContextFactory, type Services } from '../graphql/context';
import { createFormatError } from '../graphql/mask-error';
import { loadTrustedDocuments, preloadTrustedDocuments } from '../graphql/persisted-queries';
import { buildAppSchema } from '../graphql/schema';
import { createReadiness } from '../ops/health';
import { type Logger } from '../ops/logger';
import { createMetrics, type Metrics } from '../ops/metrics';
import { startTracing } from '../ops/tracing';
import { createInProcessPubSub, createRedisPubSub, type PubSub } from '../realtime/pubsub';
import { createRedis } from '../realtime/redis';
import { JwtService } from '../security/jwt';
import { LoginThrottle } from '../security/login-throttle';
import { createHttpServer } from './http';
import { startWebSocketServer } from './ws';

export interface RunningApp {
  readonly url: string;
  readonly services: Services;
  readonly metrics: Metrics;
  readonly port: number;
  readonly dataSource: DataSource;
  /** Stops accepting, drains, and releases everything in reverse order of creation. */
  stop(): Promise<void>;
}

type Disposer = () => Promise<unknown>;

/** Redis for cache, counters and pub/sub when configured; in-process otherwise. */
function openSharedState(config: Config, logger: Logger, disposers: Disposer[]) {
  if (!config.redisUrl) {
    logger.info('REDIS_URL is unset: in-process pub/sub, cache and counters (single replica only)');
    return { kv: createMemoryStore(), pubSub: createInProcessPubSub() };
  }
  // Commands issued in the same tick (by concurrent requests) share one write and one read.
  const client = createRedis(config.redisUrl, 'kv', logger, { enableAutoPipelining: true });
  const publisher = createRedis(config.redisUrl, 'pub', logger, { enableAutoPipelining: true });
  const subscriber = createRedis(config.redisUrl, 'sub', logger);
  const kv: KeyValueStore = createRedisStore(client);
  const pubSub: PubSub = createRedisPubSub(publisher, subscriber);
  disposers.push(async () => {
    await pubSub.close().catch(() => undefined);
    client.disconnect();
  });
  return { kv, pubSub };
}

function printGeneratedPassword(username: string, password: string): void {
  // Straight to stdout, once, not through the logger: log pipelines keep what they see.
  process.stdout.write(
    [
      '',
      '================================================================',
      ` Bootstrap admin created. Username: ${username}`,
      ` Password (shown once, stored only as a hash): ${password}`,
      '================================================================',
      '',
    ].join('\n') + '\n',
  );
}

export async function startApp(config: Config, logger: Logger): Promise<RunningApp> {
  const disposers: Disposer[] = [];
  let draining = false;
  const disposeAll = async () => {
    for (const dispose of disposers.reverse()) {
      await dispose().catch((err: unknown) => logger.error({ err }, 'error while shutting down'));
    }
  };

  try {
    if (config.tracing.endpoint) {
      const tracing = startTracing({ ...config.tracing, endpoint: config.tracing.endpoint });
      disposers.push(() => tracing.shutdown());
    }
    const metrics = createMetrics();
    const database = await openDatabase(config, logger, () => metrics.dbQueries.inc());
    disposers.push(() => database.close());
    const { dataSource, embedded, secrets } = database;
    const { kv, pubSub } = openSharedState(config, logger, disposers);
    const jwt = new JwtService(secrets.jwtSecret, config.auth.jwtTtlSeconds);
    const encryption = new FieldEncryption(parseEncryptionKeys(secrets.encryptionKeys));
    const rowCache = (table: 'users' | 'models') => ({
      ttlMs: config.rowCacheTtlMs,
      onLookup: (hit: boolean) => metrics.rowCache.inc({ table, result: hit ? 'hit' : 'miss' }),
    });
    const models = new ModelService(dataSource, pubSub, rowCache('models'));
    await models.start();
    disposers.push(async () => models.stop());
    const users = new UserService(
      dataSource,
      jwt,
      pubSub,
      new LoginThrottle(kv, config.http.loginPerUsernamePerMinute, config.http.loginPerIpPerMinute),
      rowCache('users'),
    );
    await users.start();
    disposers.push(async () => users.stop());
    const contexts = new ContextService(
      dataSource,
      encryption,
      new ContextCache(kv, config.contexts.cacheTtlSeconds, (hit) =>
        metrics.contextCache.inc({ result: hit ? 'hit' : 'miss' }),
      ),
      pubSub,
      models,
      config.contexts,
      users,
    );
    const history = new HistoryService(dataSource, encryption, config.graphql.maxPageSize, pubSub);
    const modelLabel = (m: { name: string; version: string }) => `${m.name}@${m.version}`;
    const runtime = createOnnxRuntime({
      workers: config.inference.workers,
      device: config.inference.device,
      intraOpThreads: config.inference.intraOpThreads,
      logger,
    });
    disposers.push(() => runtime.close());
    const registry = new ModelRegistry({
      models,
      runtime,
      modelDir: config.inference.modelDir,
      batching: config.inference,
      openRemote: createRemoteOpener(
        { ...config.inference, authorization: config.inference.remoteAuthorization },
        logger,
      ),
      logger,
      onBatch: (model, size) =>
        metrics.inferenceBatchSize.observe({ model: modelLabel(model) }, size),
    });
    disposers.push(() => registry.close());
    // A model deleted here or on another replica: its session here is released.
    models.onChanged((modelId) => void registry.release(modelId));
    const loadMonitor = new LoadMonitor();
    disposers.push(async () => loadMonitor.stop());
    const inference = new InferenceService({
      logger,
      models,
      registry,
      contexts,
      history,
      cache: new ResultCache(kv),
      throttle: new ModelThrottle(kv),
      load: loadMonitor,
      settings: {
        ...config.inference,
        historyLimit: config.contexts.historyLimit,
      },
      metrics: {
        observe: (m, seconds, outcome) =>
          metrics.inferenceDuration.observe({ model: modelLabel(m), outcome }, seconds),
        cache: (m, hit) =>
          metrics.inferenceCache.inc({ model: modelLabel(m), result: hit ? 'hit' : 'miss' }),
        throttled: (m) => metrics.inferenceThrottled.inc({ model: modelLabel(m) }),
      },
    });
    const shipped = await registry.registerShipped();
    if (shipped.length) {
      logger.info({ models: shipped }, 'shipped models registered');
    }
    const services: Services = {
      config: config.graphql,
      users,
      models,
      contexts,
      history,
      registry,
      inference,
      historyStreams: new HistoryStreams(pubSub, history, contexts, users, {
        maxBuffered: config.subscriptions.maxBuffered,
        replayPageSize: 100,
      }),
    };
    disposers.push(
      startSweeper(contexts, config.contexts.sweepIntervalMs, logger, (n) =>
        metrics.sweptContexts.inc(n),
      ),
    );

    if (config.auth.adminPassword !== undefined || embedded) {
      const bootstrap = await services.users.ensureBootstrapAdmin(
        config.auth.adminUsername,
        config.auth.adminPassword,
      );
      if (bootstrap.generatedPassword) {
        printGeneratedPassword(config.auth.adminUsername, bootstrap.generatedPassword);
      } else if (bootstrap.created) {
        logger.info({ username: config.auth.adminUsername }, 'bootstrap admin created');
      }
    } else if (!(await services.users.hasAdmin())) {
      // A shared database gets no generated password: replicas' logs are no place for it.
      logger.warn('no admin user exists; set ADMIN_PASSWORD (and ADMIN_USERNAME) to create one');
    }

    const schema = await buildAppSchema(pubSub);
    const createContext = createContextFactory({ services, jwt, logger });
    const readiness = createReadiness({ dataSource, kv, isDraining: () => draining });
    let trustedDocuments: Map<string, string> | undefined;
    if (config.graphql.persistedQueriesFile) {
      trustedDocuments = await loadTrustedDocuments(config.graphql.persistedQueriesFile);
      await preloadTrustedDocuments(kv, trustedDocuments, config.graphql.apqTtlSeconds);
    }
    const { httpServer, apollo } = await createHttpServer({
      config,
      kv,
      trustedDocuments: config.graphql.persistedOnly ? trustedDocuments : undefined,
      logger,
      metrics,
      schema,
      createContext,
      readiness,
      beforeScrape: () => {
        const pool = (
          dataSource.driver as unknown as {
            master?: { totalCount: number; idleCount: number; waitingCount: number };
          }
        ).master;
        if (pool) {
          metrics.dbPool.set({ state: 'total' }, pool.totalCount);
          metrics.dbPool.set({ state: 'idle' }, pool.idleCount);
          metrics.dbPool.set({ state: 'waiting' }, pool.waitingCount);
        }
        metrics.inferenceQueueDepth.reset();
        for (const { model, handle } of registry.ready.values()) {
          metrics.inferenceQueueDepth.set({ model: modelLabel(model) }, handle.queueDepth);
        }
      },
    });
    const ws = startWebSocketServer({
      httpServer,
      schema,
      createContext,
      formatError: createFormatError(logger),
      limits: config.subscriptions,
      queryLimits: config.graphql.limits,
      maxPayloadBytes: config.http.maxBodyBytes,
      metrics,
      logger,
    });
    // Reverse order on stop: WebSockets close first, then Apollo drains in-flight HTTP.
    disposers.push(() => apollo.stop());
    disposers.push(() => ws.dispose());

    await new Promise<void>((resolve, reject) => {
      httpServer.once('error', reject);
      httpServer.listen(config.port, config.host, () => resolve());
    });
    const { port } = httpServer.address() as AddressInfo;
    const url = `http://localhost:${port}/graphql`;
    logger.info(
      { port, database: embedded ? 'embedded' : 'external', pubsub: pubSub.mode },
      `ready at ${url}`,
    );

    let stopping: Promise<void> | undefined;
    return {
      url,
      port,
      dataSource,
      services,
      metrics,
      stop() {
        draining = true;
        stopping ??= disposeAll();
        return stopping;
      },
    };
  } catch (error) {
    await disposeAll();
    throw error;
  }
}
