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
 * value, which may be a password) under BAD_USER_INPUT.
 */
async function validateArgument(value: unknown): Promise<void> {
  const items = Array.isArray(value) ? value : [value];
  for (const item of items) {
    // Only instances of input classes carry constraints; JSON arguments are plain (often
    // null-prototype) objects that class-validator cannot inspect.
    const ctor = (item as { constructor?: unknown } | null)?.constructor;
    if (
      item === null ||
      typeof item !== 'object' ||
      typeof ctor !== 'function' ||
      ctor === Object ||
      item instanceof Date
    ) {
      continue;
    }
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
