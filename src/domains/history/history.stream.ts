import { AppError, ErrorCode, badInput, forbidden, notFound } from '../../graphql/errors';
import { parseId } from '../../graphql/ids';
import { type PubSub } from '../../realtime/pubsub';
import { SlowConsumerError, createTopicStream } from '../../realtime/topic-stream';
import { Topic, type ContextEvent, type UserEvent } from '../../realtime/topics';
import { type ContextService } from '../context/context.service';
import { type User } from '../user/user.entity';
import { type UserService } from '../user/user.service';
import { type HistoryService, type SerializedHistoryEntry } from './history.service';
import { type HistoryEntry } from './history.types';

export interface HistoryStreamSettings {
  /** Live messages a subscriber may fall behind by before its stream is closed. */
  readonly maxBuffered: number;
  /** Entries read per query while replaying. */
  readonly replayPageSize: number;
}

type Message =
  | { readonly kind: 'entry'; readonly entry: SerializedHistoryEntry }
  | { readonly kind: 'context'; readonly event: ContextEvent }
  | { readonly kind: 'user'; readonly event: UserEvent };

function classify(message: unknown): Message {
  const m = message as Record<string, unknown>;
  if (typeof m.sequence === 'number') {
    return { kind: 'entry', entry: m as SerializedHistoryEntry };
  }
  if (typeof m.userId === 'string') {
    return { kind: 'user', event: m as unknown as UserEvent };
  }
  return { kind: 'context', event: m as unknown as ContextEvent };
}

/**
 * `contextHistory`: every entry with sequence > afterSequence, in order, exactly once, on
 * whichever replica it was appended. The stream listens to the context's channel first and
 * buffers, then replays what is stored, then drains the buffer and live messages: entries
 * at or below the last one sent are dropped, and a jump is filled from the database before
 * the newer entry is sent — so nothing committed between the replay and the live phase is
 * lost or sent twice.
 */
export class HistoryStreams {
  constructor(
    private readonly pubSub: PubSub,
    private readonly history: HistoryService,
    private readonly contexts: ContextService,
    private readonly users: UserService,
    private readonly settings: HistoryStreamSettings,
  ) {}

  async watch(
    viewer: User,
    id: string,
    afterSequence: number,
  ): Promise<AsyncIterableIterator<HistoryEntry>> {
    const contextId = parseId(id, 'contextId');
    if (!Number.isInteger(afterSequence) || afterSequence < 0) {
      throw badInput('afterSequence must be a non-negative integer', { argument: 'afterSequence' });
    }
    const live = await createTopicStream<Message>(
      this.pubSub,
      [Topic.history(contextId), Topic.context(contextId), Topic.user(viewer.id)],
      (message) => ({ value: classify(message) }),
      this.settings.maxBuffered,
    );
    try {
      const context = await this.contexts.get(viewer, contextId);
      if (!context) {
        throw notFound('Context');
      }
    } catch (error) {
      await live.return?.();
      throw error;
    }
    const stream = this.stream(viewer, contextId, afterSequence, live);
    // An async generator queues return() until its pending await settles, which for an idle
    // stream is never: end the live source first so an unsubscribe frees it at once.
    const iterator: AsyncIterableIterator<HistoryEntry> = {
      next: () => stream.next(),
      throw: (error?: unknown) => stream.throw(error),
      async return(value?: unknown) {
        await live.return?.();
        return stream.return(value as undefined);
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  private async *stream(
    viewer: User,
    contextId: string,
    afterSequence: number,
    live: AsyncIterableIterator<Message>,
  ): AsyncGenerator<HistoryEntry> {
    let last = afterSequence;
    try {
      for await (const entry of this.stored(contextId, last, Number.POSITIVE_INFINITY)) {
        yield entry;
        last = entry.sequence;
      }
      for (;;) {
        let next: IteratorResult<Message>;
        try {
          next = await live.next();
        } catch (error) {
          if (error instanceof SlowConsumerError) {
            throw new AppError(
              ErrorCode.SERVICE_UNAVAILABLE,
              `${error.message}; subscribe again with afterSequence: ${last}`,
              { reason: 'SLOW_CONSUMER', lastSequence: last },
            );
          }
          throw error;
        }
        if (next.done) {
          return;
        }
        const message = next.value;
        if (message.kind === 'context') {
          if (message.event.type === 'deleted') {
            return;
          }
          continue;
        }
        if (message.kind === 'user') {
          await this.recheck(viewer, contextId, message.event);
          continue;
        }
        const sequence = Number(message.entry.sequence);
        if (sequence <= last) {
          continue;
        }
        if (sequence > last + 1) {
          // A message was missed or overtaken: fill the gap from the database first.
          for await (const entry of this.stored(contextId, last, sequence)) {
            yield entry;
            last = entry.sequence;
          }
        }
        yield this.history.fromSerialized(message.entry);
        last = sequence;
      }
    } finally {
      await live.return?.();
    }
  }

  /** Stored entries with last < sequence < before, oldest first, a page at a time. */
  private async *stored(
    contextId: string,
    last: number,
    before: number,
  ): AsyncGenerator<HistoryEntry> {
    let bound = last;
    for (;;) {
      const page = await this.history.pages([contextId], {
        direction: 'forward',
        size: this.settings.replayPageSize,
        bound,
      });
      const entries = (page.get(contextId)?.entries ?? []).filter((e) => e.sequence < before);
      for (const entry of entries) {
        yield entry;
        bound = entry.sequence;
      }
      if (!page.get(contextId)?.hasNextPage || entries.length === 0) {
        return;
      }
    }
  }

  /** A disabled or erased user loses the stream; a changed role is checked again. */
  private async recheck(viewer: User, contextId: string, event: UserEvent): Promise<void> {
    if (event.type === 'disabled' || event.type === 'erased') {
      throw new AppError(
        ErrorCode.UNAUTHENTICATED,
        event.type === 'disabled' ? 'User disabled' : 'User erased',
      );
    }
    const [current] = await this.users.findByIds([viewer.id]);
    if (!current || current.disabled) {
      throw new AppError(ErrorCode.UNAUTHENTICATED, 'User disabled');
    }
    try {
      const context = await this.contexts.get(current, contextId);
      if (!context) {
        throw notFound('Context');
      }
    } catch (error) {
      throw error instanceof AppError ? error : forbidden('This context belongs to another user');
    }
  }
}
