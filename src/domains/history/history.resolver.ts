import { Ctx, FieldResolver, Resolver, Root } from 'type-graphql';
import { type RequestContext } from '../../graphql/context';
import { Model } from '../model/model.types';
import { HistoryEntry } from './history.types';

@Resolver(() => HistoryEntry)
export class HistoryEntryResolver {
  @FieldResolver(() => Model, {
    description: 'The model that produced this turn (kept when later deleted).',
  })
  async model(@Root() entry: HistoryEntry, @Ctx() ctx: RequestContext): Promise<Model> {
    return (await ctx.loaders.modelById.load(entry.modelId))!;
  }
}
