import autocannon from 'autocannon';

export interface Latencies {
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
}

export interface LoadResult {
  /** Completed 2xx responses per second over the run. */
  readonly rps: number;
  readonly requests: number;
  readonly durationS: number;
  readonly connections: number;
  /** Milliseconds, over every response of the run. */
  readonly latencyMs: Latencies;
  /** Connection errors, timeouts and non-2xx responses. */
  readonly failures: number;
  /** Every 2xx latency, for merging runs. */
  readonly samples: readonly number[];
}

export interface LoadOptions {
  readonly url: string;
  readonly connections: number;
  readonly durationS: number;
  readonly headers?: Record<string, string>;
  /** A new body per request (called in the bench process; keep it cheap: precompute). */
  readonly body: () => string;
  /** Sees every response body; only when asked, since it costs the load generator time. */
  readonly onBody?: (body: string) => void;
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) {
    return Number.NaN;
  }
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export function latencies(samples: number[]): Latencies {
  const sorted = Float64Array.from(samples).sort();
  const arr = Array.from(sorted);
  return { p50: percentile(arr, 50), p95: percentile(arr, 95), p99: percentile(arr, 99) };
}

/**
 * POSTs at a fixed concurrency for a fixed time with autocannon, recording every response's
 * latency itself (autocannon's summary has no p95).
 */
export function runLoad(options: LoadOptions): Promise<LoadResult> {
  const samples: number[] = [];
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: options.url,
        connections: options.connections,
        duration: options.durationS,
        timeout: 30,
        requests: [
          {
            method: 'POST',
            headers: { 'content-type': 'application/json', ...options.headers },
            setupRequest: (request) => ({ ...request, body: options.body() }),
            ...(options.onBody
              ? { onResponse: (_status: number, body: string) => options.onBody!(body) }
              : {}),
          },
        ],
      },
      (error, result) => {
        if (error) {
          reject(error);
          return;
        }
        const ok = result['2xx'];
        resolve({
          rps: ok / result.duration,
          requests: ok,
          durationS: result.duration,
          connections: options.connections,
          latencyMs: latencies(samples),
          failures: result.errors + result.non2xx,
          samples,
        });
      },
    );
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      if (statusCode >= 200 && statusCode < 300) {
        samples.push(responseTime);
      }
    });
  });
}

/** Several runs of the same load as one: requests over total time, latencies pooled. */
export function mergeLoads(runs: readonly LoadResult[]): LoadResult {
  const requests = runs.reduce((n, r) => n + r.requests, 0);
  const durationS = runs.reduce((n, r) => n + r.durationS, 0);
  const samples = runs.flatMap((r) => r.samples);
  return {
    rps: requests / durationS,
    requests,
    durationS,
    connections: runs[0]!.connections,
    latencyMs: latencies(samples),
    failures: runs.reduce((n, r) => n + r.failures, 0),
    samples,
  };
}
