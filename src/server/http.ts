import { createServer, type Server } from 'node:http';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import {
  ApolloServerPluginCacheControlDisabled,
  ApolloServerPluginLandingPageDisabled,
} from '@apollo/server/plugin/disabled';
import { expressMiddleware } from '@as-integrations/express5';
import cors from 'cors';
import express, { type ErrorRequestHandler, type Express } from 'express';
import { type GraphQLSchema } from 'graphql';
import { type Config } from '../config/env';
import { type ContextInput, type RequestContext } from '../graphql/context';
import { type KeyValueStore } from '../cache/kv-store';
import { costLimitPlugin, limitRules } from '../graphql/limits';
import { persistedQueryCache, trustedDocumentsPlugin } from '../graphql/persisted-queries';
import { createFormatError, errorLoggingPlugin } from '../graphql/mask-error';
import { safeStringsPlugin } from '../graphql/safe-strings';
import { warningsPlugin } from '../graphql/warnings';
import { graphqlMetricsPlugin } from '../ops/graphql-metrics';
import { type ReadinessReport } from '../ops/health';
import { type Logger } from '../ops/logger';
import { type Metrics } from '../ops/metrics';
import { graphqlSpanPlugin, requestSpans } from '../ops/tracing';
import { serveGraphiQL, wantsGraphiQL } from './graphiql';
import { securityHeaders } from './security-headers';
import { admitPerTurn } from './admission';
import { createOipRouter } from './oip';
import { requestLogging } from './request-log';

export interface HttpDeps {
  readonly config: Config;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly schema: GraphQLSchema;
  readonly createContext: (input: ContextInput) => Promise<RequestContext>;
  readonly readiness: () => Promise<ReadinessReport>;
  /** Where automatic persisted queries are kept (Redis when configured). */
  readonly kv: KeyValueStore;
  /** Set: only these operations run (GRAPHQL_PERSISTED_ONLY). */
  readonly trustedDocuments?: ReadonlyMap<string, string>;
  /** Refreshes gauges that are read from live objects (queue depths) before a scrape. */
  readonly beforeScrape?: () => void;
}

/** Routes with a fixed label; everything else is counted as "other" to bound cardinality. */
const KNOWN_ROUTES = new Set(['/graphql', '/health', '/ready', '/metrics']);
const routeOf = (url: string) => {
  const path = url.split('?')[0] ?? '';
  return KNOWN_ROUTES.has(path) ? path : 'other';
};
/** Body-parser failures answered the GraphQL way: a JSON error with a code, no stack. */
const bodyErrorHandler =
  (maxBodyBytes: number): ErrorRequestHandler =>
  (error: { type?: string; status?: number }, _req, res, next) => {
    if (res.headersSent) {
      next(error);
      return;
    }
    const tooLarge = error.type === 'entity.too.large';
    const status = tooLarge ? 413 : (error.status ?? 400);
    const message = tooLarge
      ? `Request body exceeds ${maxBodyBytes} bytes`
      : status < 500
        ? 'Malformed request body: expected JSON'
        : 'Internal server error';
    res.status(status).json({
      errors: [
        { message, extensions: { code: status < 500 ? 'BAD_REQUEST' : 'INTERNAL_SERVER_ERROR' } },
      ],
    });
  };

export async function createHttpServer(deps: HttpDeps): Promise<{
  app: Express;
  httpServer: Server;
  apollo: ApolloServer<RequestContext>;
}> {
  const { config, logger, metrics } = deps;
  const app = express();
  app.disable('x-powered-by');
  if (config.http.trustProxy !== undefined) {
    const hops = Number(config.http.trustProxy);
    app.set('trust proxy', Number.isInteger(hops) ? hops : config.http.trustProxy);
  }
  app.use(requestSpans());
  app.use(securityHeaders());
  if (config.http.corsOrigins.length) {
    const any = config.http.corsOrigins.includes('*');
    app.use(
      cors({
        origin: any ? true : [...config.http.corsOrigins],
        allowedHeaders: [
          'Content-Type',
          'Authorization',
          'X-Request-Id',
          'Apollo-Require-Preflight',
        ],
        exposedHeaders: ['X-Request-Id', 'Retry-After'],
        maxAge: 600,
      }),
    );
  }
  const httpServer = createServer(admitPerTurn(app, config.http.requestsPerTurn));
  const formatError = createFormatError(logger);

  app.use(requestLogging(logger));

  app.use((req, res, next) => {
    // From arrival: the time a request waited for its turn (admitPerTurn) is latency too.
    const started = req.receivedAt ?? performance.now();
    res.on('finish', () => {
      const labels = {
        method: req.method,
        route: routeOf(req.originalUrl),
        status_code: String(res.statusCode),
      };
      metrics.httpDuration.observe(labels, (performance.now() - started) / 1000);
      metrics.httpRequests.inc(labels);
    });
    next();
  });

  app.get('/health', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/ready', async (_req, res) => {
    const report = await deps.readiness();
    res
      .status(report.ready ? 200 : 503)
      .json({ status: report.ready ? 'ready' : 'not ready', ...report });
  });
  if (config.metrics) {
    app.get('/metrics', async (_req, res) => {
      deps.beforeScrape?.();
      res.setHeader('Content-Type', metrics.registry.contentType);
      res.end(await metrics.registry.metrics());
    });
  }

  const apollo = new ApolloServer<RequestContext>({
    schema: deps.schema,
    introspection: config.graphql.introspection,
    includeStacktraceInErrorResponses: false,
    // main.ts owns SIGTERM: Apollo's own handler (on whenever NODE_ENV is not "test") would
    // race the ordered shutdown and leave the process waiting out the grace period.
    stopOnTerminationSignals: false,
    // Apollo's CSRF prevention refuses "simple" requests (no preflight), which includes every
    // GET. It guards cookie sessions; this API reads only `Authorization: Bearer`, which a
    // browser never attaches on its own, so a cross-site request runs anonymously — no more
    // than the attacker could send directly — and its answer stays unreadable without CORS.
    // Mutations still need POST. Off, GET queries work as the GraphQL-over-HTTP spec asks.
    csrfPrevention: false,
    formatError,
    allowBatchedHttpRequests: config.graphql.batching,
    persistedQueries: {
      cache: persistedQueryCache(deps.kv, config.graphql.apqTtlSeconds),
      ttl: config.graphql.apqTtlSeconds,
    },
    validationRules: limitRules(config.graphql.limits),
    parseOptions: { maxTokens: config.graphql.limits.maxTokens },
    plugins: [
      ApolloServerPluginDrainHttpServer({ httpServer }),
      ApolloServerPluginLandingPageDisabled(),
      ApolloServerPluginCacheControlDisabled(),
      errorLoggingPlugin(logger),
      graphqlMetricsPlugin(metrics),
      warningsPlugin(),
      safeStringsPlugin(),
      graphqlSpanPlugin(),
      costLimitPlugin(deps.schema, config.graphql.limits.maxCost),
      ...(deps.trustedDocuments ? [trustedDocumentsPlugin(deps.trustedDocuments)] : []),
    ],
  });
  await apollo.start();

  if (config.graphql.graphiql) {
    app.get('/graphql', (req, res, next) =>
      wantsGraphiQL(req) ? serveGraphiQL(req, res) : next(),
    );
  }
  app.use('/v2', createOipRouter({ createContext: deps.createContext, readiness: deps.readiness }));
  app.use(
    '/graphql',
    express.json({ limit: config.http.maxBodyBytes }),
    expressMiddleware(apollo, {
      context: ({ req }) =>
        deps.createContext({
          authorization: req.headers.authorization,
          requestId: String(req.id),
          clientAddress: req.ip,
        }),
    }),
  );
  app.use(bodyErrorHandler(config.http.maxBodyBytes));
  app.use((_req, res) => {
    res.status(404).json({ errors: [{ message: 'Not found', extensions: { code: 'NOT_FOUND' } }] });
  });

  return { app, httpServer, apollo };
}
