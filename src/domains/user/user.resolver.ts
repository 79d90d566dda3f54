import { Arg, Ctx, FieldResolver, ID, Int, Mutation, Query, Resolver, Root } from 'type-graphql';
import { type RequestContext } from '../../graphql/context';
import { pageSize, toPage } from '../../graphql/pagination';
import { toContext } from '../context/context.mapper';
import { ContextConnection } from '../context/context.types';
import { Role } from './role';
import { User } from './user.entity';
import { CreateUserInput } from './user.inputs';
import { AuthPayload, UserConnection } from './user.types';

@Resolver(() => User)
export class UserResolver {
  @Query(() => User, { nullable: true, description: 'The caller; null when anonymous.' })
  me(@Ctx() ctx: RequestContext): User | null {
    return ctx.user;
  }

  @Query(() => User, { nullable: true, description: 'Yourself, or anyone for admins.' })
  user(@Arg('id', () => ID) id: string, @Ctx() ctx: RequestContext): Promise<User | null> {
    return ctx.services.users.getVisible(ctx.user!, id);
  }

  @Query(() => UserConnection, { description: 'Admins only; oldest first.' })
  async users(
    @Arg('first', () => Int, { nullable: true, defaultValue: 20 }) first: number,
    @Arg('after', () => String, { nullable: true }) after: string | null,
    @Ctx() ctx: RequestContext,
  ): Promise<InstanceType<typeof UserConnection>> {
    const size = pageSize(first, 20, ctx.services.config.maxPageSize);
    const { rows, cursorOf } = await ctx.services.users.page(size, after);
    return Object.assign(new UserConnection(), {
      ...toPage(rows, size, cursorOf, Boolean(after)),
      count: () => ctx.services.users.count(),
    });
  }

  @Mutation(() => AuthPayload, { description: 'The only operation open to anonymous callers.' })
  async login(
    @Arg('username', () => String) username: string,
    @Arg('password', () => String) password: string,
    @Ctx() ctx: RequestContext,
  ): Promise<AuthPayload> {
    return ctx.services.users.login(username, password, ctx.clientAddress);
  }

  @Mutation(() => User, { description: 'Admins only.' })
  createUser(
    @Arg('input', () => CreateUserInput) input: CreateUserInput,
    @Ctx() ctx: RequestContext,
  ): Promise<User> {
    return ctx.services.users.create(input);
  }

  @Mutation(() => User, {
    description: "Admins only. A disabled user's tokens stop working at once.",
  })
  setUserDisabled(
    @Arg('id', () => ID) id: string,
    @Arg('disabled', () => Boolean) disabled: boolean,
    @Ctx() ctx: RequestContext,
  ): Promise<User> {
    return ctx.services.users.setDisabled(ctx.user!, id, disabled);
  }

  @Mutation(() => User, {
    description: "Admins only. The user's open subscriptions are checked again at once.",
  })
  setUserRole(
    @Arg('id', () => ID) id: string,
    @Arg('role', () => Role) role: Role,
    @Ctx() ctx: RequestContext,
  ): Promise<User> {
    return ctx.services.users.setRole(ctx.user!, id, role);
  }

  @FieldResolver(() => ContextConnection, {
    description:
      "The user's contexts, most recently updated first (yourself, or anyone for admins).",
  })
  async contexts(
    @Root() user: User,
    @Arg('first', () => Int, { nullable: true, defaultValue: 20 }) first: number,
    @Arg('after', () => String, { nullable: true }) after: string | null,
    @Ctx() ctx: RequestContext,
  ): Promise<InstanceType<typeof ContextConnection>> {
    const size = pageSize(first, 20, ctx.services.config.maxPageSize);
    const page = await ctx.loaders.contextsByUser.load({ userId: user.id, size, after });
    const edges = page.rows.map((record) => ({
      cursor: ctx.services.contexts.contextCursor(record),
      node: toContext(record),
    }));
    return Object.assign(new ContextConnection(), {
      edges,
      pageInfo: {
        hasNextPage: page.hasNextPage,
        hasPreviousPage: Boolean(after),
        startCursor: edges[0]?.cursor ?? null,
        endCursor: edges.at(-1)?.cursor ?? null,
      },
      count: () => ctx.loaders.contextCountByUser.load(user.id),
    });
  }
}
