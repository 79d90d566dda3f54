import { type ApolloServerPlugin } from '@apollo/server';
import {
  SpanKind,
  SpanStatusCode,
  context,
  trace,
  type Attributes,
  type Span,
} from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import { type RequestHandler } from 'express';

export interface TracingOptions {
  /** OTLP/HTTP base URL; spans go to `<endpoint>/v1/traces`. */
  readonly endpoint: string;
  /** Fraction of new traces recorded (children follow their parent's decision). */
  readonly sampleRatio: number;
  readonly serviceName: string;
}

/**
 * OpenTelemetry tracing, on only when an OTLP endpoint is configured; otherwise the API's
 * no-op tracer makes every span below free. Context flows through AsyncLocalStorage, so a
 * span opened for an HTTP request is the parent of the spans of the work it causes.
 */
export function startTracing(options: TracingOptions): { shutdown(): Promise<void> } {
  tracing = true;
  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': options.serviceName }),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(options.sampleRatio) }),
    spanProcessors: [
      new BatchSpanProcessor({
        exporter: new OTLPTraceExporter({
          url: `${options.endpoint.replace(/\/+$/, '')}/v1/traces`,
        }),
      }),
    ],
  });
  trace.setGlobalTracerProvider(provider);
  return {
    async shutdown() {
      await provider.shutdown();
      trace.disable();
      context.disable();
      tracing = false;
    },
  };
}

export const tracer = () => trace.getTracer('context-server');

/**
 * Whether a tracer provider is installed. Off, spans are skipped outright rather than made
 * as no-op spans: a handful per request is measurable on the hot path.
 */
let tracing = false;
const NO_SPAN = trace.wrapSpanContext({ traceId: '', spanId: '', traceFlags: 0 });

/** Runs `work` in a child span of the active one; errors mark the span and propagate. */
export async function inSpan<T>(
  name: string,
  attributes: Attributes,
  work: (span: Span) => Promise<T>,
): Promise<T> {
  if (!tracing) {
    return work(NO_SPAN);
  }
  return tracer().startActiveSpan(name, { attributes }, async (span) => {
    try {
      return await work(span);
    } catch (error) {
      span.setStatus({
        code: SpanStatusCode.ERROR,
        message: error instanceof Error ? error.name : 'error',
      });
      throw error;
    } finally {
      span.end();
    }
  });
}

/** Trace and span ids of the active span, for log lines. */
export function traceFields(): { trace_id?: string; span_id?: string } {
  const span = trace.getActiveSpan();
  if (!span) {
    return {};
  }
  const { traceId, spanId, traceFlags } = span.spanContext();
  return traceFlags & 1 ? { trace_id: traceId, span_id: spanId } : {};
}

/** A server span per HTTP request, active while the request is handled. */
export function requestSpans(): RequestHandler {
  return (req, res, next) => {
    if (!tracing) {
      next();
      return;
    }
    const span = tracer().startSpan(`${req.method} ${req.path}`, {
      kind: SpanKind.SERVER,
      attributes: { 'http.request.method': req.method, 'url.path': req.path },
    });
    res.once('finish', () => {
      span.setAttribute('http.response.status_code', res.statusCode);
      if (res.statusCode >= 500) {
        span.setStatus({ code: SpanStatusCode.ERROR });
      }
      span.end();
    });
    context.with(trace.setSpan(context.active(), span), next);
  };
}

/** Names the request's span after the GraphQL operation and records its outcome. */
export function graphqlSpanPlugin(): ApolloServerPlugin {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ operation, operationName }) {
          const span = trace.getActiveSpan();
          span?.updateName(
            `graphql ${operation?.operation ?? 'unknown'} ${operationName ?? 'anonymous'}`,
          );
          span?.setAttributes({
            'graphql.operation.type': operation?.operation ?? 'unknown',
            'graphql.operation.name': operationName ?? 'anonymous',
          });
        },
        async didEncounterErrors({ errors }) {
          trace.getActiveSpan()?.setStatus({
            code: SpanStatusCode.ERROR,
            message: String(errors[0]?.extensions?.code ?? 'error'),
          });
        },
      };
    },
  };
}
