import { type Server } from 'node:http';
import { type GraphQLFormattedError, type GraphQLSchema } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import { type ContextInput, type RequestContext } from '../graphql/context';

export interface WsDeps {
  readonly httpServer: Server;
  readonly schema: GraphQLSchema;
  readonly createContext: (input: ContextInput) => Promise<RequestContext>;
  readonly formatError: (formatted: GraphQLFormattedError, error: unknown) => GraphQLFormattedError;
}

/** Close code for a refused token, mirroring HTTP 401 (graphql-ws itself uses 4403 for "forbidden"). */
export const WS_CLOSE_UNAUTHORIZED = 4401;

/**
 * graphql-ws on the HTTP server's port and path. The token travels in `connection_init`
 * (`connectionParams.authorization`); a token that is sent but refused closes the socket with
 * 4401, while no token at all leaves the connection anonymous for the field rules to judge.
 */
export function startWebSocketServer(deps: WsDeps) {
  const wss = new WebSocketServer({ server: deps.httpServer, path: '/graphql' });
  const authorizationOf = (params: Readonly<Record<string, unknown>> | undefined) =>
    params?.authorization ?? params?.Authorization;

  const server = useServer(
    {
      schema: deps.schema,
      connectionInitWaitTimeout: 10_000, // 10 s
      async onConnect(ctx) {
        const authorization = authorizationOf(ctx.connectionParams);
        if (authorization === undefined) {
          return true;
        }
        const context = await deps.createContext({ authorization });
        if (context.authError) {
          ctx.extra.socket.close(WS_CLOSE_UNAUTHORIZED, `Unauthorized: ${context.authError}`);
          return false;
        }
        return true;
      },
      // A fresh context (and loaders) per operation; the token is re-checked each time.
      context: (ctx) =>
        deps.createContext({ authorization: authorizationOf(ctx.connectionParams) }),
      // The same masking as HTTP: coded errors pass, anything else becomes an errorId.
      onNext(_ctx, _id, _payload, _args, result) {
        if (!result.errors?.length) {
          return undefined;
        }
        return { ...result, errors: result.errors.map((e) => deps.formatError(e.toJSON(), e)) };
      },
      onError(_ctx, _id, _payload, errors) {
        return errors.map((e) => deps.formatError(e.toJSON(), e));
      },
    },
    wss,
  );

  return {
    async dispose() {
      await server.dispose();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}
