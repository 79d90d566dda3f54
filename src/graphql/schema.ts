import 'reflect-metadata';
import { validate } from 'class-validator';
import { type GraphQLSchema } from 'graphql';
import { buildSchema } from 'type-graphql';
import {
  ContextResolver,
  ModelContextResolver,
  UserContextResolver,
} from '../domains/context/context.resolver';
import { HistoryEntryResolver } from '../domains/history/history.resolver';
import { HistorySubscriptionResolver } from '../domains/history/history.subscription';
import { InferResolver } from '../domains/inference/infer.resolver';
import { ModelResolver } from '../domains/model/model.resolver';
import { UserResolver } from '../domains/user/user.resolver';
import { createInProcessPubSub, type PubSub } from '../realtime/pubsub';
import { badInput } from './errors';
import { applyPermissions, guardSubscriptions } from './permissions';
import { DateTimeScalar } from './scalars';

export const RESOLVERS = [
  UserResolver,
  ContextResolver,
  UserContextResolver,
  ModelContextResolver,
  HistoryEntryResolver,
  ModelResolver,
  InferResolver,
  HistorySubscriptionResolver,
] as const;

/**
 * class-validator over input objects; the error lists each broken constraint (never the
 * value, which may be a password) under BAD_USER_INPUT. Synchronous for the arguments that
 * carry no constraints, which are most of them: ids, numbers, JSON.
 */
function validateArgument(value: unknown): Promise<void> | undefined {
  if (!Array.isArray(value)) {
    return hasConstraints(value) ? validateItems([value]) : undefined;
  }
  const constrained = value.filter(hasConstraints);
  return constrained.length ? validateItems(constrained) : undefined;
}

/** Only instances of input classes carry constraints; JSON arguments are plain objects. */
function hasConstraints(item: unknown): item is object {
  if (item === null || typeof item !== 'object' || item instanceof Date) {
    return false;
  }
  const ctor = (item as { constructor?: unknown }).constructor;
  return typeof ctor === 'function' && ctor !== Object;
}

async function validateItems(items: readonly object[]): Promise<void> {
  for (const item of items) {
    const errors = await validate(item, {
      skipMissingProperties: true,
      forbidUnknownValues: false,
      validationError: { target: false, value: false },
    });
    if (errors.length) {
      const problems = errors.flatMap((e) =>
        Object.values(e.constraints ?? {}).map((message) => ({ field: e.property, message })),
      );
      throw badInput(problems.map((p) => p.message).join('; '), { problems });
    }
  }
}

/** The executable schema without permissions (what `npm run schema` prints). */
export function buildBaseSchema(pubSub: PubSub = createInProcessPubSub()): Promise<GraphQLSchema> {
  return buildSchema({
    resolvers: RESOLVERS,
    pubSub,
    scalarsMap: [{ type: Date, scalar: DateTimeScalar }],
    validateFn: validateArgument,
    emitSchemaFile: false,
  });
}

/** The schema the server runs: the base schema behind deny-by-default permissions. */
export async function buildAppSchema(pubSub: PubSub): Promise<GraphQLSchema> {
  return guardSubscriptions(applyPermissions(await buildBaseSchema(pubSub)));
}
