import { Arg, Ctx, ID, Mutation, Query, Resolver } from 'type-graphql';
import { type RequestContext } from '../../graphql/context';
import { notImplemented } from '../../graphql/errors';
import { RegisterModelInput } from './model.inputs';
import { toModel } from './model.service';
import { Model } from './model.types';

@Resolver(() => Model)
export class ModelResolver {
  @Query(() => Model, {
    nullable: true,
    description:
      'By id, or by name (+ version; the newest when omitted). Deleted models are not found.',
  })
  async model(
    @Arg('id', () => ID, { nullable: true }) id: string | null,
    @Arg('name', () => String, { nullable: true }) name: string | null,
    @Arg('version', () => String, { nullable: true }) version: string | null,
    @Ctx() ctx: RequestContext,
  ): Promise<Model | null> {
    const row = await ctx.services.models.find({ id, name, version });
    return row ? toModel(row) : null;
  }

  @Query(() => [Model], { description: 'Every model that is not deleted, by name.' })
  async models(@Ctx() ctx: RequestContext): Promise<Model[]> {
    return (await ctx.services.models.list()).map((row) => toModel(row));
  }

  @Mutation(() => Model)
  registerModel(@Arg('input', () => RegisterModelInput) _input: RegisterModelInput): never {
    throw notImplemented('registerModel');
  }

  @Mutation(() => Boolean)
  deleteModel(@Arg('id', () => ID) _id: string): never {
    throw notImplemented('deleteModel');
  }
}
