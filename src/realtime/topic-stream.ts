import { type PubSub } from './pubsub';

export class SlowConsumerError extends Error {
  override readonly name = 'SlowConsumerError';
}

/** What to do with one message: emit a value, end the stream, or skip it. */
export type StreamStep<T> = { value: T } | { done: true } | undefined;

/**
 * An async iterator over one pub/sub topic. Messages are buffered up to `maxBuffered` while
 * the consumer is busy; past that the stream fails with SlowConsumerError instead of
 * growing memory (the client resumes from what it last saw).
 */
export async function createTopicStream<T>(
  pubSub: PubSub,
  topics: string | readonly string[],
  step: (message: unknown) => StreamStep<T> | Promise<StreamStep<T>>,
  maxBuffered = 1_000,
): Promise<AsyncIterableIterator<T>> {
  const buffer: unknown[] = [];
  let wake: (() => void) | undefined;
  let failure: Error | undefined;
  let finished = false;

  const onMessage = (message: unknown) => {
    if (finished) {
      return;
    }
    if (buffer.length >= maxBuffered) {
      failure ??= new SlowConsumerError(`Subscriber fell more than ${maxBuffered} messages behind`);
    } else {
      buffer.push(message);
    }
    wake?.();
  };
  const unlisteners = await Promise.all(
    (typeof topics === 'string' ? [topics] : topics).map((topic) =>
      pubSub.listen(topic, onMessage),
    ),
  );

  const finish = () => {
    if (!finished) {
      finished = true;
      for (const unlisten of unlisteners) {
        unlisten();
      }
      wake?.();
    }
  };

  const iterator: AsyncIterableIterator<T> = {
    async next(): Promise<IteratorResult<T>> {
      for (;;) {
        if (failure) {
          finish();
          throw failure;
        }
        if (buffer.length) {
          const result = await step(buffer.shift());
          if (result && 'done' in result) {
            finish();
            return { done: true, value: undefined };
          }
          if (result) {
            return { done: false, value: result.value };
          }
          continue;
        }
        if (finished) {
          return { done: true, value: undefined };
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
      }
    },
    async return(): Promise<IteratorResult<T>> {
      finish();
      return { done: true, value: undefined };
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}
