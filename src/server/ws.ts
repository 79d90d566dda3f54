import { type Server } from 'node:http';
import {
  GraphQLError,
  parse,
  specifiedRules,
  validate,
  type DocumentNode,
  type GraphQLFormattedError,
  type GraphQLSchema,
} from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer, type WebSocket } from 'ws';
import { type Config } from '../config/env';
import { type ContextInput, type RequestContext } from '../graphql/context';
import { ErrorCode } from '../graphql/errors';
import { limitRules, type QueryLimits } from '../graphql/limits';
import { findUnsafeString, hasUnsafeLiteral, unsafeStringError } from '../graphql/safe-strings';
import { type Logger } from '../ops/logger';
import { type Metrics } from '../ops/metrics';
import { createSharedSubscribe } from './shared-subscribe';
import { coalesceWrites } from './ws-writes';

export interface WsDeps {
  readonly httpServer: Server;
  readonly schema: GraphQLSchema;
  readonly createContext: (input: ContextInput) => Promise<RequestContext>;
  readonly formatError: (formatted: GraphQLFormattedError, error: unknown) => GraphQLFormattedError;
  readonly limits: Config['subscriptions'];
  readonly queryLimits: QueryLimits;
  readonly maxPayloadBytes: number;
  readonly metrics: Metrics;
  readonly logger: Logger;
}

/**
 * Close codes this server uses beyond graphql-ws's own (4400, 4403, 4408, 4409, 4429,
 * 4499, 4500): one vocabulary, mirroring HTTP status codes.
 */
export const WsCloseCode = {
  /** The token sent in connection_init was refused, or expired while connected. */
  Unauthorized: 4401,
  /** Too many connections for one user. */
  TooManyConnections: 4029,
  /** Going away: the replica is shutting down; resume elsewhere with afterSequence. */
  GoingAway: 1001,
} as const;

function coded(
  message: string,
  code: string,
  extensions: Record<string, unknown> = {},
  from?: GraphQLError,
): GraphQLError {
  return new GraphQLError(message, {
    nodes: from?.nodes,
    source: from?.source,
    positions: from?.positions,
    extensions: { ...extensions, code },
  });
}

const MAX_CACHED_DOCUMENTS = 1_000;

/**
 * Subscription fields whose per-event resolver returns a function of the event alone
 * (`contextHistory` returns the entry): their arguments only choose the stream, so
 * subscribers that differ in them can share an event's answer. (`contextUpdated` would
 * qualify too, but each of its subscribers decodes its own copy of the event, so nothing
 * would be shared.)
 */
const PASS_THROUGH_SUBSCRIPTIONS: ReadonlySet<string> = new Set(['contextHistory']);

interface Connection {
  userId?: string;
  subscriptions: Set<string>;
  expiryTimer?: NodeJS.Timeout;
  alive: boolean;
}

/**
 * graphql-ws on the HTTP server's port and path. The token travels in `connection_init`
 * (`connectionParams.authorization`): a token that is sent but refused closes the socket with
 * 4401, as does its expiry during the connection; no token leaves the connection anonymous
 * for the field rules to judge. Connections per user and subscriptions per connection are
 * bounded, and idle sockets are pinged so dead peers are noticed.
 */
export function startWebSocketServer(deps: WsDeps) {
  const { limits, metrics } = deps;
  // The same body limit as HTTP: a larger frame closes the socket with 1009.
  const wss = new WebSocketServer({
    server: deps.httpServer,
    path: '/graphql',
    maxPayload: deps.maxPayloadBytes,
  });
  /** graphql-js leaves variable-coercion errors uncoded; every error a client sees has a code. */
  const format = (e: GraphQLError) => {
    const formatted = deps.formatError(e.toJSON(), e);
    if (formatted.extensions?.code) {
      return formatted;
    }
    const code = /^Variable "\$/.test(formatted.message)
      ? ErrorCode.BAD_USER_INPUT
      : 'GRAPHQL_VALIDATION_FAILED';
    return { ...formatted, extensions: { ...formatted.extensions, code } };
  };
  const connections = new Map<WebSocket, Connection>();
  const perUser = new Map<string, number>();
  const authorizationOf = (params: Readonly<Record<string, unknown>> | undefined) =>
    params?.authorization ?? params?.Authorization;
  const stateOf = (socket: WebSocket): Connection => {
    let state = connections.get(socket);
    if (!state) {
      state = { subscriptions: new Set(), alive: true };
      connections.set(socket, state);
      socket.on('pong', () => {
        state!.alive = true;
      });
    }
    return state;
  };

  wss.on('connection', (socket, request) => {
    stateOf(socket);
    coalesceWrites(socket, request.socket);
    // Message types only a server may send are a protocol violation (4400); graphql-ws
    // itself would answer them with an internal-error close (4500).
    socket.on('message', (raw) => {
      let type: unknown;
      try {
        type = (JSON.parse(String(raw)) as { type?: unknown }).type;
      } catch {
        return;
      }
      if (type === 'next' || type === 'error' || type === 'connection_ack') {
        socket.close(4400, `Unexpected message type "${String(type)}" from a client`);
      }
    });
    metrics.wsConnections.inc();
    socket.once('close', () => {
      const state = connections.get(socket);
      connections.delete(socket);
      metrics.wsConnections.dec();
      if (state) {
        clearTimeout(state.expiryTimer);
        metrics.subscriptionsActive.dec(state.subscriptions.size);
        if (state.subscriptions.size) {
          metrics.subscriptionsClosed.inc({ reason: 'socket' }, state.subscriptions.size);
        }
        if (state.userId) {
          const n = (perUser.get(state.userId) ?? 1) - 1;
          if (n > 0) {
            perUser.set(state.userId, n);
          } else {
            perUser.delete(state.userId);
          }
        }
      }
    });
  });

  const keepAlive = setInterval(() => {
    for (const [socket, state] of connections) {
      if (!state.alive) {
        socket.terminate();
        continue;
      }
      state.alive = false;
      socket.ping();
    }
  }, limits.keepAliveMs);
  keepAlive.unref();

  const validDocuments = new Map<string, DocumentNode>();
  const server = useServer<Record<string, unknown> | undefined, { socket: WebSocket }>(
    {
      schema: deps.schema,
      subscribe: createSharedSubscribe(PASS_THROUGH_SUBSCRIPTIONS),
      connectionInitWaitTimeout: 10_000, // 10 s
      async onConnect(ctx) {
        const authorization = authorizationOf(ctx.connectionParams);
        if (authorization === undefined) {
          return true;
        }
        const context = await deps.createContext({ authorization });
        const socket = ctx.extra.socket;
        if (context.authError || !context.user) {
          socket.close(
            WsCloseCode.Unauthorized,
            `Unauthorized: ${context.authError ?? 'Invalid token'}`,
          );
          return false;
        }
        const userId = context.user.id;
        const open = perUser.get(userId) ?? 0;
        if (open >= limits.maxConnectionsPerUser) {
          socket.close(
            WsCloseCode.TooManyConnections,
            `Too many connections: at most ${limits.maxConnectionsPerUser} per user`,
          );
          return false;
        }
        perUser.set(userId, open + 1);
        const state = stateOf(socket);
        state.userId = userId;
        if (context.tokenExpiresAt) {
          const ms = context.tokenExpiresAt.getTime() - Date.now();
          state.expiryTimer = setTimeout(
            () => socket.close(WsCloseCode.Unauthorized, 'Token expired'),
            Math.max(0, ms),
          );
          state.expiryTimer.unref();
        }
        return true;
      },
      /**
       * graphql-ws parses and validates on its own and closes the whole socket (4500) on a
       * syntax error; doing it here answers that one subscription with a coded error and
       * applies the same limits as HTTP.
       */
      async onSubscribe(ctx, id, payload) {
        const state = stateOf(ctx.extra.socket);
        if (state.subscriptions.size >= limits.maxSubscriptionsPerConnection) {
          return [
            coded(
              `Too many subscriptions: at most ${limits.maxSubscriptionsPerConnection} per connection`,
              ErrorCode.LIMIT_EXCEEDED,
              { limit: limits.maxSubscriptionsPerConnection },
            ),
          ];
        }
        let document = validDocuments.get(payload.query);
        if (!document) {
          try {
            document = parse(payload.query, { maxTokens: deps.queryLimits.maxTokens });
          } catch (error) {
            const message = error instanceof Error ? error.message : 'Syntax error';
            return [
              /Document contains more th(?:at|an)/.test(message)
                ? coded(
                    `Operation exceeds the tokens limit of ${deps.queryLimits.maxTokens}`,
                    ErrorCode.QUERY_TOO_COMPLEX,
                    { limit: 'tokens', max: deps.queryLimits.maxTokens },
                  )
                : error instanceof RangeError
                  ? coded('Operation is nested too deeply to parse', ErrorCode.QUERY_TOO_COMPLEX, {
                      limit: 'depth',
                    })
                  : coded(message, 'GRAPHQL_PARSE_FAILED'),
            ];
          }
          const errors = validate(deps.schema, document, [
            ...specifiedRules,
            ...limitRules(deps.queryLimits),
          ]);
          if (errors.length) {
            return errors.map((e) =>
              e.extensions.code ? e : coded(e.message, 'GRAPHQL_VALIDATION_FAILED', {}, e),
            );
          }
          if (hasUnsafeLiteral(document)) {
            return [unsafeStringError('A string in the operation')];
          }
          // Documents are immutable: every subscription with this text shares one parsed copy.
          if (validDocuments.size >= MAX_CACHED_DOCUMENTS) {
            validDocuments.delete(validDocuments.keys().next().value!);
          }
          validDocuments.set(payload.query, document);
        }
        const unsafe = findUnsafeString(payload.variables ?? {}, 'variables');
        if (unsafe) {
          return [unsafeStringError(unsafe)];
        }
        state.subscriptions.add(id);
        metrics.subscriptionsActive.inc();
        return {
          schema: deps.schema,
          document,
          operationName: payload.operationName,
          variableValues: payload.variables,
          contextValue: await deps.createContext({
            authorization: authorizationOf(ctx.connectionParams),
          }),
        };
      },
      onComplete(ctx, id) {
        const state = connections.get(ctx.extra.socket);
        if (state?.subscriptions.delete(id)) {
          metrics.subscriptionsActive.dec();
          metrics.subscriptionsClosed.inc({ reason: 'complete' });
        }
      },
      // A fresh context (and loaders) per operation; the token is checked again each time.
      context: (ctx) =>
        deps.createContext({ authorization: authorizationOf(ctx.connectionParams) }),
      // The same masking as HTTP: coded errors pass, anything else becomes an errorId.
      onNext(_ctx, _id, _payload, _args, result) {
        metrics.subscriptionMessages.inc();
        if (!result.errors?.length) {
          return undefined;
        }
        return { ...result, errors: result.errors.map(format) };
      },
      onError(ctx, id, _payload, errors) {
        const state = connections.get(ctx.extra.socket);
        if (state?.subscriptions.delete(id)) {
          metrics.subscriptionsActive.dec();
        }
        metrics.subscriptionsClosed.inc({ reason: 'error' });
        return errors.map(format);
      },
    },
    wss,
  );

  return {
    /** Stops accepting, closes every socket (1001: resume elsewhere) and ends its streams. */
    async dispose() {
      clearInterval(keepAlive);
      await server.dispose();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}
