import { type ApolloServerPlugin } from '@apollo/server';
import { type Metrics } from './metrics';

/** Operation counters, latency and errors by code, labelled by operation name and type. */
export function graphqlMetricsPlugin(metrics: Metrics): ApolloServerPlugin {
  return {
    // The context function failed (e.g. the database is down while checking the token):
    // Apollo answers without running the request pipeline, so count it here.
    async contextCreationDidFail({ error }) {
      const code = String(
        (error as { extensions?: { code?: unknown } }).extensions?.code ?? 'INTERNAL_SERVER_ERROR',
      );
      const labels = { operation_name: 'unknown', operation_type: 'unknown', outcome: 'error' };
      metrics.graphqlOperations.inc(labels);
      metrics.graphqlErrors.inc({ code });
    },
    async requestDidStart() {
      const started = process.hrtime.bigint();
      return {
        async willSendResponse({ operation, operationName, errors, response }) {
          const body = response.body;
          const resultErrors = body.kind === 'single' ? (body.singleResult.errors ?? []) : [];
          const all = errors?.length ? errors : resultErrors;
          const labels = {
            // Bounded cardinality: unnamed operations share one label.
            operation_name: operationName ?? 'anonymous',
            operation_type: operation?.operation ?? 'unknown',
            outcome: all.length ? 'error' : 'success',
          };
          metrics.graphqlOperations.inc(labels);
          metrics.graphqlDuration.observe(labels, Number(process.hrtime.bigint() - started) / 1e9);
          for (const error of resultErrors) {
            metrics.graphqlErrors.inc({ code: String(error.extensions?.code ?? 'UNKNOWN') });
          }
        },
      };
    },
  };
}
