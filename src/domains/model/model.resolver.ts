import { Arg, Ctx, FieldResolver, ID, Mutation, Query, Resolver, Root } from 'type-graphql';
import { type RequestContext } from '../../graphql/context';
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

  @Mutation(() => Model, {
    description:
      "MODEL_DEVELOPER or ADMIN. ONNX: `path` names a file inside the server's model directory " +
      '(text models need a tokenizer.json beside it); the file is loaded and its real tensor specs ' +
      'recorded, and a broken file is refused. REMOTE: `endpoint` + `remoteName` on an Open ' +
      'Inference Protocol v2 (KServe/Triton) or TF Serving v1 server.',
  })
  async registerModel(
    @Arg('input', () => RegisterModelInput) input: RegisterModelInput,
    @Ctx() ctx: RequestContext,
  ): Promise<Model> {
    const row = await ctx.services.registry.register(input);
    return toModel(row);
  }

  @Mutation(() => Boolean, {
    description:
      'MODEL_DEVELOPER or ADMIN. Hides the model from listings and refuses new inference on it; ' +
      'contexts and history that name it still resolve.',
  })
  deleteModel(@Arg('id', () => ID) id: string, @Ctx() ctx: RequestContext): Promise<boolean> {
    return ctx.services.registry.delete(id);
  }

  @FieldResolver(() => String, {
    nullable: true,
    description:
      'Provider actually in use once loaded ("cuda", "cpu"); null before first load or for REMOTE.',
  })
  executionProvider(@Root() model: Model, @Ctx() ctx: RequestContext): string | null {
    const provider = ctx.services.registry.providerOf(model.id);
    return provider === 'remote' ? null : provider;
  }
}
