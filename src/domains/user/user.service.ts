import { In, QueryFailedError, type DataSource, type Repository } from 'typeorm';
import { AppError, ErrorCode, badInput, conflict, forbidden, notFound } from '../../graphql/errors';
import { isUuid, parseId } from '../../graphql/ids';
import { decodeCursor, encodeCursor, isIsoTimestamp } from '../../graphql/pagination';
import { NO_ROW_COPIES, ReplicaRowCache, type RowCacheSettings } from '../../cache/row-cache';
import { type PubSub } from '../../realtime/pubsub';
import { Topic, type UserEvent } from '../../realtime/topics';
import { type IssuedToken, type JwtService } from '../../security/jwt';
import { type LoginThrottle } from '../../security/login-throttle';
import {
  dummyPasswordHash,
  generatePassword,
  hashPassword,
  verifyPassword,
} from '../../security/passwords';
import { Role } from './role';
import { User } from './user.entity';
import { PASSWORD_MAX, USERNAME_MAX, type CreateUserInput } from './user.inputs';

const UNIQUE_VIOLATION = '23505';

export interface UserPage {
  readonly rows: User[];
  readonly cursorOf: (user: User) => string;
}

export interface BootstrapResult {
  /** Set only when this call created the admin with a generated password. */
  readonly generatedPassword?: string;
  readonly created: boolean;
}

/** Users, passwords and login. Knows nothing of GraphQL beyond the coded errors it throws. */
export class UserService {
  private readonly repo: Repository<User>;
  private readonly rows: ReplicaRowCache<User>;

  constructor(
    dataSource: DataSource,
    private readonly jwt: JwtService,
    private readonly pubSub: PubSub,
    private readonly loginThrottle?: LoginThrottle,
    rowCache: RowCacheSettings = NO_ROW_COPIES,
  ) {
    this.repo = dataSource.getRepository(User);
    this.rows = new ReplicaRowCache({
      ...rowCache,
      topic: Topic.rowChanged('users'),
      pubSub,
      load: (ids) => this.findByIds(ids),
      idOf: (user) => user.id,
    });
  }

  /** Follows user changes made on other replicas. */
  start(): Promise<void> {
    return this.rows.start();
  }

  stop(): void {
    this.rows.stop();
  }

  /** Straight from the database (for checks that must see the latest row). */
  findByIds(ids: readonly string[]): Promise<User[]> {
    const valid = ids.filter(isUuid);
    return valid.length ? this.repo.findBy({ id: In(valid) }) : Promise.resolve([]);
  }

  /**
   * Through this replica's row cache: the caller's row is read on every request. Every
   * change of a user goes through `announce` (or `rows.changed`), so no replica serves an
   * old role or a disabled account.
   */
  getByIds(ids: readonly string[]): Promise<(User | null)[]> {
    return this.rows.getMany(ids);
  }

  async login(
    username: string,
    password: string,
    clientAddress?: string,
  ): Promise<IssuedToken & { user: User }> {
    if (username.length === 0 || password.length === 0) {
      throw badInput('username and password are required');
    }
    if (username.length > USERNAME_MAX || password.length > PASSWORD_MAX) {
      throw badInput('username or password is too long');
    }
    await this.loginThrottle?.take(username, clientAddress);
    const user = await this.repo
      .createQueryBuilder('u')
      .addSelect('u.passwordHash')
      .where('lower(u.username) = lower(:username)', { username })
      .getOne();
    // Hash even for an unknown username, so timing does not tell which usernames exist.
    const ok = await verifyPassword(password, user?.passwordHash ?? (await dummyPasswordHash()));
    if (!user || !ok) {
      throw new AppError(ErrorCode.UNAUTHENTICATED, 'Invalid username or password');
    }
    if (user.disabled) {
      throw forbidden('This account is disabled');
    }
    return { ...this.jwt.issue(user.id, user.role), user };
  }

  async create(input: CreateUserInput): Promise<User> {
    const passwordHash = await hashPassword(input.password);
    try {
      const inserted = await this.repo
        .createQueryBuilder()
        .insert()
        .values({
          username: input.username,
          passwordHash,
          email: input.email ?? null,
          fullName: input.fullName ?? null,
          role: input.role ?? Role.USER,
        })
        .returning('*')
        .execute();
      return this.repo.create(inserted.generatedMaps[0] as User);
    } catch (error) {
      if (
        error instanceof QueryFailedError &&
        (error.driverError as { code?: string }).code === UNIQUE_VIOLATION
      ) {
        throw conflict('Username already taken', { field: 'username' });
      }
      throw error;
    }
  }

  /** Self or admin; others get FORBIDDEN whether or not the id exists. */
  async getVisible(viewer: User, id: string): Promise<User | null> {
    const userId = parseId(id);
    if (viewer.role !== Role.ADMIN && viewer.id !== userId) {
      throw forbidden('You may only read your own user');
    }
    return this.repo.findOneBy({ id: userId });
  }

  async setDisabled(viewer: User, id: string, disabled: boolean): Promise<User> {
    const userId = parseId(id);
    if (viewer.id === userId && disabled) {
      throw badInput('You cannot disable your own account', { argument: 'id' });
    }
    const result = await this.repo
      .createQueryBuilder()
      .update()
      .set({ disabled })
      .where('id = :id', { id: userId })
      .returning('*')
      .execute();
    if (!result.affected) {
      throw notFound('User');
    }
    if (disabled) {
      await this.announce({ type: 'disabled', userId });
    } else {
      await this.rows.changed(userId);
    }
    return this.repo.create(result.raw[0] as User);
  }

  /** Admins only (by rule); the user's open streams are checked again on every replica. */
  async setRole(viewer: User, id: string, role: Role): Promise<User> {
    const userId = parseId(id);
    if (viewer.id === userId && role !== Role.ADMIN) {
      throw badInput('You cannot take away your own admin role', { argument: 'id' });
    }
    const result = await this.repo
      .createQueryBuilder()
      .update()
      .set({ role })
      .where('id = :id', { id: userId })
      .returning('*')
      .execute();
    if (!result.affected) {
      throw notFound('User');
    }
    await this.announce({ type: 'role-changed', userId });
    return this.repo.create(result.raw[0] as User);
  }

  /**
   * After a committed change that ends or re-checks a user's access: every replica forgets its
   * copy of the row, and the user's open streams learn of it.
   */
  async announce(event: UserEvent): Promise<void> {
    await this.rows.changed(event.userId);
    await this.pubSub.publish(Topic.user(event.userId), event);
  }

  /** Keyset page over (created_at, id); fetches `size + 1` rows to know if more follow. */
  async page(size: number, after: string | null | undefined): Promise<UserPage> {
    const qb = this.repo
      .createQueryBuilder('u')
      .orderBy('u.createdAt', 'ASC')
      .addOrderBy('u.id', 'ASC');
    if (after) {
      const [createdAt, id] = decodeCursor(after, 2);
      if (!isIsoTimestamp(createdAt) || !isUuid(String(id))) {
        throw badInput('Invalid cursor', { argument: 'after' });
      }
      qb.where('(u.created_at, u.id) > (:createdAt, :id)', { createdAt, id });
    }
    const rows = await qb.limit(size + 1).getMany();
    return { rows, cursorOf: (u) => encodeCursor([u.createdAt.toISOString(), u.id]) };
  }

  async hasAdmin(): Promise<boolean> {
    return (await this.repo.countBy({ role: Role.ADMIN })) > 0;
  }

  count(): Promise<number> {
    return this.repo.count();
  }

  /**
   * Creates the first admin when there is none. With no password configured, one is generated
   * and returned for printing once; only its hash is stored. Safe when replicas race: the
   * unique username decides, and the loser does nothing.
   */
  async ensureBootstrapAdmin(
    username: string,
    password: string | undefined,
  ): Promise<BootstrapResult> {
    if (await this.hasAdmin()) {
      return { created: false };
    }
    const chosen = password ?? generatePassword();
    try {
      await this.create({ username, password: chosen, role: Role.ADMIN });
    } catch (error) {
      if (error instanceof AppError && error.code === ErrorCode.CONFLICT) {
        return { created: false };
      }
      throw error;
    }
    return { created: true, generatedPassword: password === undefined ? chosen : undefined };
  }
}
