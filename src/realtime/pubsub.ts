import { type Redis } from 'ioredis';
import { RedisPubSub } from 'graphql-redis-subscriptions';
import { PubSub as InProcessPubSub, type PubSubEngine } from 'graphql-subscriptions';
import { type PubSub as TypeGraphQLPubSub } from 'type-graphql';

/**
 * The pub/sub port: Redis when REDIS_URL is set (messages reach every replica), in-process
 * otherwise (single replica only). Both adapters are graphql-subscriptions engines.
 */
export interface PubSub extends TypeGraphQLPubSub {
  readonly mode: 'redis' | 'memory';
  publish(topic: string, payload: unknown): Promise<void>;
  subscribe(topic: string): AsyncIterableIterator<unknown>;
  /** Callback style, for streams that must buffer live messages while they replay. */
  listen(topic: string, onMessage: (payload: unknown) => void): Promise<() => void>;
  /**
   * Told `false` when messages may stop arriving (the subscriber connection is lost; those
   * published meanwhile are never delivered), and `true` once delivery is whole again (the
   * connection is back and its channels are subscribed again).
   */
  onDelivery(listener: (complete: boolean) => void): void;
  /** Whether every message published now will be delivered here (see `onDelivery`). */
  readonly delivering: boolean;
  close(): Promise<void>;
}

function wrap(
  engine: PubSubEngine,
  mode: PubSub['mode'],
  close: () => Promise<void>,
  delivery: { on: PubSub['onDelivery']; complete: () => boolean } = {
    on: () => undefined,
    complete: () => true,
  },
): PubSub {
  return {
    mode,
    onDelivery: delivery.on,
    get delivering() {
      return delivery.complete();
    },
    publish: (topic, payload) => engine.publish(topic, payload),
    subscribe: (topic) => engine.asyncIterableIterator(topic),
    async listen(topic, onMessage) {
      const id = await engine.subscribe(topic, onMessage, {});
      return () => engine.unsubscribe(id);
    },
    close,
  };
}

export function createInProcessPubSub(): PubSub {
  return wrap(new InProcessPubSub(), 'memory', async () => undefined);
}

/** Takes two dedicated connections: a subscribed Redis connection can do nothing else. */
export function createRedisPubSub(publisher: Redis, subscriber: Redis): PubSub {
  const engine = new RedisPubSub({ publisher, subscriber });
  const listeners: ((complete: boolean) => void)[] = [];
  let complete = subscriber.status === 'ready';
  const tell = (now: boolean) => {
    if (now !== complete) {
      complete = now;
      listeners.forEach((listener) => listener(now));
    }
  };
  subscriber.on('close', () => tell(false));
  subscriber.on('ready', () => {
    // ioredis sends SUBSCRIBE for the channels again just before it emits 'ready': a PING
    // queued behind them is answered once they are in effect.
    subscriber.ping().then(
      () => tell(subscriber.status === 'ready'),
      () => undefined, // lost again: the next 'ready' asks again
    );
  });
  return wrap(
    engine,
    'redis',
    async () => {
      await engine.close();
    },
    { on: (listener) => listeners.push(listener), complete: () => complete },
  );
}
