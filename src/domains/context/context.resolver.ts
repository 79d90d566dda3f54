import {
  Arg,
  FieldResolver,
  ID,
  Int,
  Mutation,
  Query,
  Resolver,
  Root,
  Subscription,
} from 'type-graphql';
import { notImplemented } from '../../graphql/errors';
import { HistoryConnection } from '../history/history.types';
import {
  ContextFilter,
  ContextUpdate,
  CreateContextInput,
  UpdateContextInput,
} from './context.inputs';
import { Context, ContextConnection, DeletionReport } from './context.types';

/** The context API of the public contract; served from the "Contexts" issue on. */
@Resolver(() => Context)
export class ContextResolver {
  @Query(() => Context, { nullable: true })
  context(@Arg('id', () => ID) _id: string): never {
    throw notImplemented('context');
  }

  @Query(() => ContextConnection)
  contexts(
    @Arg('filter', () => ContextFilter, { nullable: true }) _filter: ContextFilter | null,
    @Arg('first', () => Int, { nullable: true, defaultValue: 20 }) _first: number,
    @Arg('after', () => String, { nullable: true }) _after: string | null,
  ): never {
    throw notImplemented('contexts');
  }

  @Mutation(() => Context)
  createContext(@Arg('input', () => CreateContextInput) _input: CreateContextInput): never {
    throw notImplemented('createContext');
  }

  @Mutation(() => Context)
  updateContext(
    @Arg('id', () => ID) _id: string,
    @Arg('patch', () => UpdateContextInput) _patch: UpdateContextInput,
    @Arg('expectedVersion', () => Int, { nullable: true }) _expectedVersion: number | null,
  ): never {
    throw notImplemented('updateContext');
  }

  @Mutation(() => [Context], { description: 'One transaction: all or nothing.' })
  updateContexts(@Arg('updates', () => [ContextUpdate]) _updates: ContextUpdate[]): never {
    throw notImplemented('updateContexts');
  }

  @Mutation(() => Boolean)
  deleteContext(@Arg('id', () => ID) _id: string): never {
    throw notImplemented('deleteContext');
  }

  @Mutation(() => DeletionReport, { description: 'Right to erasure.' })
  deleteUserData(@Arg('userId', () => ID) _userId: string): never {
    throw notImplemented('deleteUserData');
  }

  @Subscription(() => Context, {
    subscribe: () => {
      throw notImplemented('contextUpdated');
    },
  })
  contextUpdated(@Arg('contextId', () => ID) _contextId: string): never {
    throw notImplemented('contextUpdated');
  }

  @FieldResolver(() => HistoryConnection)
  history(
    @Root() _context: Context,
    @Arg('first', () => Int, { nullable: true }) _first: number | null,
    @Arg('after', () => String, { nullable: true }) _after: string | null,
    @Arg('last', () => Int, { nullable: true }) _last: number | null,
    @Arg('before', () => String, { nullable: true }) _before: string | null,
  ): never {
    throw notImplemented('Context.history');
  }
}
