import { Arg, ID, Int, Resolver, Subscription } from 'type-graphql';
import { notImplemented } from '../../graphql/errors';
import { HistoryEntry } from './history.types';

/** Live history; served from the "Live history" issue on. */
@Resolver()
export class HistorySubscriptionResolver {
  @Subscription(() => HistoryEntry, {
    description:
      'Every entry with sequence > afterSequence, oldest first: first those already stored, then each ' +
      'new one as it is appended, on whichever replica it was appended. No gap, no duplicate.',
    subscribe: () => {
      throw notImplemented('contextHistory');
    },
  })
  contextHistory(
    @Arg('contextId', () => ID) _contextId: string,
    @Arg('afterSequence', () => Int, { nullable: true, defaultValue: 0 }) _afterSequence: number,
  ): never {
    throw notImplemented('contextHistory');
  }
}
