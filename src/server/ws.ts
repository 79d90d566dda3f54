import { type Server } from 'node:http';
import { GraphQLError, type GraphQLFormattedError, type GraphQLSchema } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer, type WebSocket } from 'ws';
import { type Config } from '../config/env';
import { type ContextInput, type RequestContext } from '../graphql/context';
import { ErrorCode } from '../graphql/errors';
import { type Logger } from '../ops/logger';
import { type Metrics } from '../ops/metrics';

export interface WsDeps {
  readonly httpServer: Server;
  readonly schema: GraphQLSchema;
  readonly createContext: (input: ContextInput) => Promise<RequestContext>;
  readonly formatError: (formatted: GraphQLFormattedError, error: unknown) => GraphQLFormattedError;
  readonly limits: Config['subscriptions'];
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
  const wss = new WebSocketServer({ server: deps.httpServer, path: '/graphql' });
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

  wss.on('connection', (socket) => {
    stateOf(socket);
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

  const server = useServer<Record<string, unknown> | undefined, { socket: WebSocket }>(
    {
      schema: deps.schema,
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
      onSubscribe(ctx, id) {
        const state = stateOf(ctx.extra.socket);
        if (state.subscriptions.size >= limits.maxSubscriptionsPerConnection) {
          return [
            new GraphQLError(
              `Too many subscriptions: at most ${limits.maxSubscriptionsPerConnection} per connection`,
              {
                extensions: {
                  code: ErrorCode.LIMIT_EXCEEDED,
                  limit: limits.maxSubscriptionsPerConnection,
                },
              },
            ),
          ];
        }
        state.subscriptions.add(id);
        metrics.subscriptionsActive.inc();
        return undefined;
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
        return { ...result, errors: result.errors.map((e) => deps.formatError(e.toJSON(), e)) };
      },
      onError(ctx, id, _payload, errors) {
        const state = connections.get(ctx.extra.socket);
        if (state?.subscriptions.delete(id)) {
          metrics.subscriptionsActive.dec();
        }
        metrics.subscriptionsClosed.inc({ reason: 'error' });
        return errors.map((e) => deps.formatError(e.toJSON(), e));
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
