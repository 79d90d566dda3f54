import { type ApolloServerPlugin } from '@apollo/server';
import { type Metrics } from './metrics';

/** Operation counters, latency and errors by code, labelled by operation name and type. */
export function graphqlMetricsPlugin(metrics: Metrics): ApolloServerPlugin {
  return {
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
