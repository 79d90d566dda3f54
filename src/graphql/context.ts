import { randomUUID } from 'node:crypto';
import { GraphQLError } from 'graphql';
import { ErrorCode } from './errors';
import { isOutage } from './outages';
import { type Config } from '../config/env';
import { type Logger } from '../ops/logger';
import { TokenError, extractBearer, type JwtService } from '../security/jwt';
import { type User } from '../domains/user/user.entity';
import { createUserLoaders, type UserLoaders } from '../domains/user/user.loaders';
import { type UserService } from '../domains/user/user.service';
import { createContextLoaders, type ContextLoaders } from '../domains/context/context.loaders';
import { type ContextService } from '../domains/context/context.service';
import { createHistoryLoaders, type HistoryLoaders } from '../domains/history/history.loaders';
import { type HistoryService } from '../domains/history/history.service';
import { type HistoryStreams } from '../domains/history/history.stream';
import { createModelLoaders, type ModelLoaders } from '../domains/model/model.loaders';
import { type ModelService } from '../domains/model/model.service';
import { type InferenceService } from '../inference/infer.service';
import { type ModelRegistry } from '../inference/registry';

/** Process-wide services, created once in main.ts and shared by every request. */
export interface Services {
  readonly config: Config['graphql'];
  readonly users: UserService;
  readonly models: ModelService;
  readonly contexts: ContextService;
  readonly history: HistoryService;
  readonly registry: ModelRegistry;
  readonly inference: InferenceService;
  readonly historyStreams: HistoryStreams;
}

export type Loaders = UserLoaders & ModelLoaders & ContextLoaders & HistoryLoaders;

/** A non-fatal note for the client, sent in the response's `extensions.warnings`. */
export interface Warning {
  readonly code: string;
  readonly message: string;
  readonly paths?: readonly string[];
}

/** What every resolver gets: who is calling, and a fresh set of loaders for this request. */
export interface RequestContext {
  readonly requestId: string;
  readonly clientAddress: string | undefined;
  /** The authenticated, enabled user; null when anonymous or the token was refused. */
  readonly user: User | null;
  /** Why a token that was sent was refused (expired, invalid, user disabled). */
  readonly authError: string | undefined;
  /** When the accepted token expires (long-lived WebSockets close then). */
  readonly tokenExpiresAt: Date | undefined;
  readonly logger: Logger;
  readonly services: Services;
  readonly loaders: Loaders;
  readonly warnings: Warning[];
}

export interface ContextDeps {
  readonly services: Services;
  readonly jwt: JwtService;
  readonly logger: Logger;
}

export interface ContextInput {
  /** An `Authorization` header value or graphql-ws `connectionParams.authorization`. */
  readonly authorization: unknown;
  readonly requestId?: string;
  /** The client's address (for login throttling); behind proxies see TRUST_PROXY. */
  readonly clientAddress?: string;
}

/**
 * A request's DataLoaders, each group made on first use: an `infer` or a `me` touches one
 * group at most, and a page of contexts three; the others need not exist.
 */
class RequestLoaders implements Loaders {
  private users?: UserLoaders;
  private models?: ModelLoaders;
  private contexts?: ContextLoaders;
  private history?: HistoryLoaders;

  constructor(private readonly services: Services) {}

  get userById() {
    return (this.users ??= createUserLoaders(this.services.users)).userById;
  }

  get modelById() {
    return (this.models ??= createModelLoaders(this.services.models)).modelById;
  }

  get contextsByUser() {
    return this.contextLoaders().contextsByUser;
  }

  get contextCountByUser() {
    return this.contextLoaders().contextCountByUser;
  }

  get historyPage() {
    return this.historyLoaders().historyPage;
  }

  get historyCount() {
    return this.historyLoaders().historyCount;
  }

  private contextLoaders(): ContextLoaders {
    return (this.contexts ??= createContextLoaders(this.services.contexts));
  }

  private historyLoaders(): HistoryLoaders {
    return (this.history ??= createHistoryLoaders(this.services.history));
  }
}

/**
 * The context value. `logger` is a getter on the prototype, so the request's child logger
 * (a pino child costs a serialization) is made only when something logs; Apollo clones the
 * value with Object.assign, which copies own fields and leaves prototype getters alone.
 */
class RequestContextValue implements RequestContext {
  private requestLogger: Logger | undefined;
  readonly warnings: Warning[] = [];

  constructor(
    readonly requestId: string,
    readonly clientAddress: string | undefined,
    readonly user: User | null,
    readonly authError: string | undefined,
    readonly tokenExpiresAt: Date | undefined,
    readonly services: Services,
    readonly loaders: Loaders,
    private readonly rootLogger: Logger,
  ) {}

  get logger(): Logger {
    this.requestLogger ??= this.rootLogger.child({
      requestId: this.requestId,
      userId: this.user?.id,
    });
    return this.requestLogger;
  }
}

export function createContextFactory(deps: ContextDeps) {
  return async function createContext(input: ContextInput): Promise<RequestContext> {
    const requestId = input.requestId ?? randomUUID();
    const { services } = deps;
    const loaders = new RequestLoaders(services);
    const { user, authError, tokenExpiresAt } = await authenticate(
      deps,
      loaders,
      input.authorization,
    );
    return new RequestContextValue(
      requestId,
      input.clientAddress,
      user,
      authError,
      tokenExpiresAt,
      services,
      loaders,
      deps.logger,
    );
  };
}

async function authenticate(
  deps: ContextDeps,
  loaders: Loaders,
  authorization: unknown,
): Promise<{ user: User | null; authError: string | undefined; tokenExpiresAt?: Date }> {
  const token = extractBearer(authorization);
  if (token === undefined) {
    return { user: null, authError: undefined };
  }
  try {
    const claims = deps.jwt.verify(token);
    // The user row, not the token, decides: a disabled or deleted user's tokens stop working
    // and a role change applies at once.
    const user = await loaders.userById.load(claims.sub);
    if (!user) {
      return { user: null, authError: 'Invalid token' };
    }
    if (user.disabled) {
      return { user: null, authError: 'User disabled' };
    }
    return { user, authError: undefined, tokenExpiresAt: new Date(claims.exp * 1000) };
  } catch (error) {
    if (error instanceof TokenError) {
      return { user: null, authError: error.message };
    }
    if (isOutage(error)) {
      // Thrown from the context function: Apollo answers with this error and its status.
      throw new GraphQLError('A backing service is unavailable; retry shortly', {
        extensions: { code: ErrorCode.SERVICE_UNAVAILABLE, http: { status: 503 } },
      });
    }
    throw error;
  }
}
