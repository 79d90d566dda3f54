import { Arg, ID, Mutation, Resolver } from 'type-graphql';
import { notImplemented } from '../../graphql/errors';
import { JSONObjectScalar, JSONScalar, type JsonObject } from '../../graphql/scalars';
import { InferenceResult } from './inference.types';

/** `infer`, the GraphQL face of src/inference; served from the "Models and inference" issue on. */
@Resolver()
export class InferResolver {
  @Mutation(() => InferenceResult)
  infer(
    @Arg('modelId', () => ID) _modelId: string,
    @Arg('input', () => JSONScalar) _input: unknown,
    @Arg('contextId', () => ID, { nullable: true }) _contextId: string | null,
    @Arg('parameters', () => JSONObjectScalar, { nullable: true }) _parameters: JsonObject | null,
  ): never {
    throw notImplemented('infer');
  }
}
