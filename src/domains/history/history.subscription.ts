import {
  Arg,
  ID,
  Int,
  Resolver,
  Root,
  Subscription,
  type SubscribeResolverData,
} from 'type-graphql';
import { type RequestContext } from '../../graphql/context';
import { HistoryEntry } from './history.types';

@Resolver()
export class HistorySubscriptionResolver {
  @Subscription(() => HistoryEntry, {
    description:
      'Every entry with sequence > afterSequence, oldest first: first those already stored, then each ' +
      'new one as it is appended, on whichever replica it was appended. No gap, no duplicate. ' +
      'Entries already removed by the history limit (HISTORY_LIMIT) are not replayed. Completes when ' +
      'the context is deleted; a subscriber that falls too far behind is closed with ' +
      'SERVICE_UNAVAILABLE (reason SLOW_CONSUMER, lastSequence) and resumes with afterSequence.',
    subscribe: ({
      args,
      context,
    }: SubscribeResolverData<
      unknown,
      { contextId: string; afterSequence: number },
      RequestContext
    >) =>
      context.services.historyStreams.watch(context.user!, args.contextId, args.afterSequence ?? 0),
  })
  contextHistory(
    @Arg('contextId', () => ID) _contextId: string,
    @Arg('afterSequence', () => Int, { nullable: true, defaultValue: 0 }) _afterSequence: number,
    @Root() entry: HistoryEntry,
  ): HistoryEntry {
    return entry;
  }
}
