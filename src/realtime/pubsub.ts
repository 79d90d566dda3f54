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
  /** Called after the subscriber connection comes back: messages sent meanwhile were lost. */
  onReconnect(listener: () => void): void;
  close(): Promise<void>;
}

function wrap(
  engine: PubSubEngine,
  mode: PubSub['mode'],
  close: () => Promise<void>,
  onReconnect: PubSub['onReconnect'] = () => undefined,
): PubSub {
  return {
    mode,
    onReconnect,
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
  let connected = subscriber.status === 'ready';
  const listeners: (() => void)[] = [];
  subscriber.on('ready', () => {
    if (connected) {
      listeners.forEach((listener) => listener());
    }
    connected = true;
  });
  return wrap(
    engine,
    'redis',
    async () => {
      await engine.close();
    },
    (listener) => listeners.push(listener),
  );
}
