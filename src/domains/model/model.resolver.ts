import { Arg, ID, Mutation, Query, Resolver } from 'type-graphql';
import { notImplemented } from '../../graphql/errors';
import { RegisterModelInput } from './model.inputs';
import { Model } from './model.types';

/** The model registry of the public contract; served from the "Models and inference" issue on. */
@Resolver(() => Model)
export class ModelResolver {
  @Query(() => Model, {
    nullable: true,
    description: 'By id, or by name (+ version; the newest when omitted).',
  })
  model(
    @Arg('id', () => ID, { nullable: true }) _id: string | null,
    @Arg('name', () => String, { nullable: true }) _name: string | null,
    @Arg('version', () => String, { nullable: true }) _version: string | null,
  ): never {
    throw notImplemented('model');
  }

  @Query(() => [Model])
  models(): never {
    throw notImplemented('models');
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
