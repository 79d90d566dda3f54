import { createClient, type Client } from 'graphql-ws';
import { WebSocket } from 'ws';
import { latencies, type Latencies } from './load';
import { type SeededContext } from './seed';

const HISTORY_SUBSCRIPTION = `subscription($contextId: ID!, $after: Int) {
  contextHistory(contextId: $contextId, afterSequence: $after) { sequence createdAt input output }
}`;

/** Subscriptions opened before waiting for them: bounded so setup never queues past the pool. */
const WAVE = 500;
const ACK_TIMEOUT_MS = 60_000; // 60 s per wave
const DELIVERY_TIMEOUT_MS = 30_000; // 30 s per append
/**
 * Appends delivered and waited for, but not timed, before the timed ones: the first requests
 * down a code path after start-up pay for compiling it and for filling caches.
 */
export const WARM_UP_APPENDS = 3;

export interface SubscriptionOptions {
  readonly wsUrl: string;
  readonly token: string;
  /** Contexts the idle subscriptions spread over (each needs at least one history entry). */
  readonly contexts: readonly SeededContext[];
  /** The context whose subscribers receive the appends. */
  readonly hot: SeededContext;
  readonly total: number;
  readonly perConnection: number;
  readonly hotSubscribers: number;
  readonly appends: number;
  /** Appends one entry to the hot context; resolves when the server has answered. */
  readonly append: () => Promise<void>;
  /** The server's memory now; `atMax` while it holds every subscription. */
  readonly memory: (atMax: boolean) => Promise<MemoryMb>;
  readonly activeSubscriptions: () => Promise<number>;
}

export interface MemoryMb {
  readonly rss: number;
  readonly heapUsed: number;
  readonly external: number;
}

export interface SubscriptionResult {
  readonly count: number;
  readonly connections: number;
  readonly openSeconds: number;
  readonly before: MemoryMb;
  readonly atMax: MemoryMb;
  /** Per delivery: from sending the appending request to the subscriber's receipt. */
  readonly fanoutMs: Latencies;
  readonly deliveries: number;
  /** The appending request's own round trip (infer + history append). */
  readonly appendMs: Latencies;
}

interface Subscriber {
  /** Resolves at the first message: the replayed last entry, proof the stream is live. */
  readonly ready: Promise<void>;
  expect?: { sequence: number; resolve: (at: number) => void };
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * Holds `total` idle contextHistory subscriptions over a few graphql-ws connections, reads
 * the server's RSS, then times `appends` appends to the hot context's subscribers.
 */
export async function runSubscriptions(options: SubscriptionOptions): Promise<SubscriptionResult> {
  const connections = Math.ceil(options.total / options.perConnection);
  const clients: Client[] = Array.from({ length: connections }, () =>
    createClient({
      url: options.wsUrl,
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${options.token}` },
      lazy: false,
      retryAttempts: 0,
      onNonLazyError: () => undefined, // reported by the subscriptions that fail
    }),
  );
  const before = await options.memory(false);
  const subscribers: Subscriber[] = [];
  const hot: Subscriber[] = [];
  const others = options.contexts.filter((c) => c.id !== options.hot.id);

  const subscribe = (client: Client, context: SeededContext): Subscriber => {
    let first: (() => void) | undefined;
    let fail: ((error: unknown) => void) | undefined;
    const ready = new Promise<void>((resolve, reject) => {
      first = resolve;
      fail = reject;
    });
    const subscriber: Subscriber = { ready };
    client.subscribe<{ contextHistory: { sequence: number } }>(
      {
        query: HISTORY_SUBSCRIPTION,
        variables: { contextId: context.id, after: context.lastSequence - 1 },
      },
      {
        next(message) {
          const at = performance.now();
          const sequence = message.data?.contextHistory.sequence;
          if (first) {
            first();
            first = undefined;
            return;
          }
          if (subscriber.expect && sequence === subscriber.expect.sequence) {
            subscriber.expect.resolve(at);
            subscriber.expect = undefined;
          }
        },
        error(error) {
          fail?.(error instanceof Error ? error : new Error(JSON.stringify(error)));
        },
        complete() {
          fail?.(new Error('a subscription completed unexpectedly'));
        },
      },
    );
    return subscriber;
  };

  const started = performance.now();
  try {
    for (let i = 0; i < options.total; i += WAVE) {
      const wave: Subscriber[] = [];
      for (let j = i; j < Math.min(options.total, i + WAVE); j++) {
        const client = clients[j % connections]!;
        const isHot = j < options.hotSubscribers;
        const subscriber = subscribe(client, isHot ? options.hot : others[j % others.length]!);
        (isHot ? hot : subscribers).push(subscriber);
        wave.push(subscriber);
      }
      await withTimeout(
        Promise.all(wave.map((s) => s.ready)),
        ACK_TIMEOUT_MS,
        `opening subscriptions ${i}–${i + wave.length}`,
      );
    }
    const openSeconds = (performance.now() - started) / 1000;
    const count = await options.activeSubscriptions();
    const atMax = await options.memory(true);

    const deliveries: number[] = [];
    const appendTimes: number[] = [];
    for (let k = 1; k <= WARM_UP_APPENDS + options.appends; k++) {
      const sequence = options.hot.lastSequence + k;
      const received = hot.map(
        (s) =>
          new Promise<number>((resolve) => {
            s.expect = { sequence, resolve };
          }),
      );
      const t0 = performance.now();
      await options.append();
      const appended = performance.now();
      const times = await withTimeout(
        Promise.all(received),
        DELIVERY_TIMEOUT_MS,
        `delivering append ${k}`,
      );
      if (k > WARM_UP_APPENDS) {
        appendTimes.push(appended - t0);
        deliveries.push(...times.map((t) => t - t0));
      }
    }
    return {
      count,
      connections,
      openSeconds,
      before,
      atMax,
      fanoutMs: latencies(deliveries),
      deliveries: deliveries.length,
      appendMs: latencies(appendTimes),
    };
  } finally {
    await Promise.all(clients.map((c) => c.dispose()));
  }
}
