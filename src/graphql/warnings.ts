import { type ApolloServerPlugin } from '@apollo/server';
import { type RequestContext } from './context';

/** Sends the notes resolvers collected in `ctx.warnings` as the response's `extensions.warnings`. */
export function warningsPlugin(): ApolloServerPlugin<RequestContext> {
  return {
    async requestDidStart() {
      return {
        async willSendResponse({ contextValue, response }) {
          if (contextValue.warnings.length && response.body.kind === 'single') {
            const result = response.body.singleResult;
            result.extensions = { ...result.extensions, warnings: contextValue.warnings };
          }
        },
      };
    },
  };
}
