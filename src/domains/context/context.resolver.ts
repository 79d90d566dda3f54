import {
  Arg,
  Ctx,
  FieldResolver,
  ID,
  Int,
  Mutation,
  Query,
  Resolver,
  Root,
  Subscription,
  type SubscribeResolverData,
} from 'type-graphql';
import { type RequestContext } from '../../graphql/context';
import { pageSize, toPage } from '../../graphql/pagination';
import { historyCursor } from '../history/history.service';
import { HistoryConnection } from '../history/history.types';
import { Model } from '../model/model.types';
import { User } from '../user/user.entity';
import {
  ContextFilter,
  ContextUpdate,
  CreateContextInput,
  UpdateContextInput,
} from './context.inputs';
import { toContext } from './context.mapper';
import { type ContextRecord } from './context.service';
import {
  Context,
  ContextConnection,
  DeletionReport,
  ErasureReceiptConnection,
  ModelContext,
  UserContext,
} from './context.types';

function warnStripped(ctx: RequestContext, paths: readonly string[]): void {
  if (paths.length) {
    ctx.warnings.push({
      code: 'SECRETS_STRIPPED',
      message: 'Credential-like keys were removed before storing the context',
      paths,
    });
  }
}

@Resolver(() => Context)
export class ContextResolver {
  @Query(() => Context, {
    nullable: true,
    description: 'null when it does not exist or has expired; FORBIDDEN when it is not yours.',
  })
  async context(
    @Arg('id', () => ID) id: string,
    @Ctx() ctx: RequestContext,
  ): Promise<Context | null> {
    const record = await ctx.services.contexts.get(ctx.user!, id);
    return record ? toContext(record) : null;
  }

  @Query(() => ContextConnection, {
    description:
      'Your contexts (admins: everyone’s, or one user’s with filter.userId), most recently updated first.',
  })
  async contexts(
    @Arg('filter', () => ContextFilter, { nullable: true }) filter: ContextFilter | null,
    @Arg('first', () => Int, { nullable: true, defaultValue: 20 }) first: number,
    @Arg('after', () => String, { nullable: true }) after: string | null,
    @Ctx() ctx: RequestContext,
  ): Promise<InstanceType<typeof ContextConnection>> {
    const size = pageSize(first, 20, ctx.services.config.maxPageSize);
    const page = await ctx.services.contexts.page(ctx.user!, filter, size, after);
    const { edges, pageInfo } = toPage(page.rows, size, page.cursorOf, Boolean(after));
    pageInfo.hasNextPage = page.hasNextPage;
    return Object.assign(new ContextConnection(), {
      edges: edges.map((e) => ({ cursor: e.cursor, node: toContext(e.node) })),
      pageInfo,
      count: page.count,
    });
  }

  @Mutation(() => Context, {
    description:
      'Sections left out get defaults. Keys that look like credentials are refused (or stripped, ' +
      'by server policy, then listed in extensions.warnings). At most CONTEXT_MAX_BYTES serialized.',
  })
  async createContext(
    @Arg('input', () => CreateContextInput) input: CreateContextInput,
    @Ctx() ctx: RequestContext,
  ): Promise<Context> {
    const { record, removedPaths } = await ctx.services.contexts.create(ctx.user!, input);
    warnStripped(ctx, removedPaths);
    return toContext(record);
  }

  @Mutation(() => Context, {
    description:
      'Each section given replaces that section; sections left out stay. With expectedVersion, a ' +
      'concurrent change makes this fail with CONFLICT (extensions.currentVersion).',
  })
  async updateContext(
    @Arg('id', () => ID) id: string,
    @Arg('patch', () => UpdateContextInput) patch: UpdateContextInput,
    @Arg('expectedVersion', () => Int, { nullable: true }) expectedVersion: number | null,
    @Ctx() ctx: RequestContext,
  ): Promise<Context> {
    const { record, removedPaths } = await ctx.services.contexts.update(
      ctx.user!,
      id,
      patch,
      expectedVersion,
    );
    warnStripped(ctx, removedPaths);
    return toContext(record);
  }

  @Mutation(() => [Context], {
    description:
      'One transaction: all or nothing. An error names the failing item (extensions.index).',
  })
  async updateContexts(
    @Arg('updates', () => [ContextUpdate]) updates: ContextUpdate[],
    @Ctx() ctx: RequestContext,
  ): Promise<Context[]> {
    const { records, removedPaths } = await ctx.services.contexts.updateMany(ctx.user!, updates);
    warnStripped(ctx, removedPaths);
    return records.map(toContext);
  }

  @Mutation(() => Boolean, {
    description: 'Deletes the context and its history; its streams complete.',
  })
  deleteContext(@Arg('id', () => ID) id: string, @Ctx() ctx: RequestContext): Promise<boolean> {
    return ctx.services.contexts.delete(ctx.user!, id);
  }

  @Mutation(() => DeletionReport, {
    description:
      'Right to erasure: deletes the user, their contexts and history in one transaction. Yourself, ' +
      'or anyone for admins; a receipt without personal data is kept (erasureReceipts).',
  })
  deleteUserData(
    @Arg('userId', () => ID) userId: string,
    @Ctx() ctx: RequestContext,
  ): Promise<DeletionReport> {
    return ctx.services.contexts.eraseUser(ctx.user!, userId);
  }

  @Query(() => ErasureReceiptConnection, { description: 'Admins only; oldest first.' })
  async erasureReceipts(
    @Arg('first', () => Int, { nullable: true, defaultValue: 20 }) first: number,
    @Arg('after', () => String, { nullable: true }) after: string | null,
    @Ctx() ctx: RequestContext,
  ): Promise<InstanceType<typeof ErasureReceiptConnection>> {
    const size = pageSize(first, 20, ctx.services.config.maxPageSize);
    const { rows, cursorOf, count } = await ctx.services.contexts.receipts(size, after);
    return Object.assign(new ErasureReceiptConnection(), {
      ...toPage(rows, size, cursorOf, Boolean(after)),
      count,
    });
  }

  @Subscription(() => Context, {
    description: 'The new state after each committed write; completes when the context is deleted.',
    subscribe: ({
      args,
      context,
    }: SubscribeResolverData<unknown, { contextId: string }, RequestContext>) =>
      context.services.contexts.watch(context.user!, args.contextId),
  })
  contextUpdated(
    @Arg('contextId', () => ID) _contextId: string,
    @Root() record: ContextRecord,
  ): Context {
    return toContext(record);
  }

  @FieldResolver(() => HistoryConnection, {
    description:
      'Inference turns. first/after walk from the oldest entry, last/before from the newest (default: ' +
      'the newest 20); edges are always oldest first. Entries beyond the history limit are deleted.',
  })
  async history(
    @Root() context: Context,
    @Arg('first', () => Int, { nullable: true }) first: number | null,
    @Arg('after', () => String, { nullable: true }) after: string | null,
    @Arg('last', () => Int, { nullable: true }) last: number | null,
    @Arg('before', () => String, { nullable: true }) before: string | null,
    @Ctx() ctx: RequestContext,
  ): Promise<InstanceType<typeof HistoryConnection>> {
    const window = ctx.services.history.window({ first, after, last, before });
    const page = await ctx.loaders.historyPage.load({ contextId: context.id, window });
    const edges = page.entries.map((node) => ({ cursor: historyCursor(node.sequence), node }));
    return Object.assign(new HistoryConnection(), {
      edges,
      pageInfo: {
        hasNextPage: page.hasNextPage,
        hasPreviousPage: page.hasPreviousPage,
        startCursor: edges[0]?.cursor ?? null,
        endCursor: edges.at(-1)?.cursor ?? null,
      },
      count: () => ctx.loaders.historyCount.load(context.id),
    });
  }
}

@Resolver(() => UserContext)
export class UserContextResolver {
  @FieldResolver(() => User)
  async user(@Root() section: UserContext, @Ctx() ctx: RequestContext): Promise<User> {
    // The row's foreign key guarantees the owner exists while the context does.
    return (await ctx.loaders.userById.load(section.userId))!;
  }
}

@Resolver(() => ModelContext)
export class ModelContextResolver {
  @FieldResolver(() => Model)
  async model(@Root() section: ModelContext, @Ctx() ctx: RequestContext): Promise<Model> {
    return (await ctx.loaders.modelById.load(section.modelId))!;
  }
}
