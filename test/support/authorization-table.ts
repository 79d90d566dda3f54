import { type ErrorCode } from '../../src/graphql/errors';

/**
 * Who may do what, as one table: every root field of the schema has at least one row, each
 * with a sample operation and the outcome every caller must get. The matrix test
 * (test/integration/authorization-matrix.test.ts) runs each row as each caller and fails when
 * the schema gains a root field without a row, or loses one that still has a row.
 */

export const CALLERS = [
  'anonymous',
  'owner',
  'nonOwner',
  'developer',
  'admin',
  'disabled',
] as const;
/**
 * anonymous: no token. owner: a USER who owns the context fixtures. nonOwner: another USER.
 * developer: a MODEL_DEVELOPER who owns none of them. admin: the bootstrap admin. disabled: a
 * USER whose account was disabled after logging in, calling with that token.
 */
export type Caller = (typeof CALLERS)[number];

/**
 * What one caller gets. `ok`: data, no error; `null`: no error, and the root field is null;
 * otherwise the error code, followed by `@path` when the error is below the root field
 * (list indices left out, so `models.endpoint` stands for every item).
 */
export type Outcome = 'ok' | 'null' | ErrorCode | `${ErrorCode}@${string}`;

export type Expected = Readonly<Record<Caller, Outcome>>;

export type Variables = Record<string, unknown>;

/** What the rows build their arguments from; the test creates these on the running server. */
export interface Fixtures {
  /** Each signed-in caller's user id; anonymous has none. */
  readonly userIds: Readonly<Record<Exclude<Caller, 'anonymous'>, string>>;
  /** A context of the owner, on a REMOTE model (so its endpoint is set), with one history entry. */
  readonly ownerContextId: string;
  /** A shipped ONNX model (sentiment-afinn) everyone may run. */
  readonly modelId: string;
  /** A REMOTE model whose endpoint only developers and admins may read. */
  readonly remoteModelId: string;
  /** An endpoint where nothing listens, for registering REMOTE models. */
  readonly deadEndpoint: string;
  /** A well-formed id that names nothing. */
  readonly missingId: string;
  /** An account that is no caller, so logging in as it changes nothing the rows rely on. */
  readonly loginAccount: { readonly username: string; readonly password: string };
  /** A name nobody has used yet. */
  unique(prefix: string): string;
  /** A fresh context of that user (created by the admin), or of the admin when undefined. */
  freshContext(userId: string | undefined): Promise<string>;
  /** A fresh USER with one context, for the rows that disable, promote or erase someone. */
  freshUser(): Promise<string>;
  /** A fresh REMOTE model, for the rows that delete one. */
  freshModel(): Promise<string>;
  /** A write to the context by the admin: contextUpdated sends its new state. */
  touchContext(contextId: string): Promise<void>;
  /** An inference with the context by the admin: contextHistory sends the new entry. */
  appendHistory(contextId: string): Promise<void>;
}

export interface Row {
  /** The root field, as `Type.field`. */
  readonly field: string;
  /** What this row checks, beyond calling the field. */
  readonly checks: string;
  /** One operation whose only root field is `field`, without an alias. */
  readonly document: string;
  /** Its variables for one caller; rows that destroy something make a fresh one per caller. */
  readonly variables?: (f: Fixtures, caller: Caller) => Variables | Promise<Variables>;
  /** Subscriptions: what makes the server send an event; repeated until the first arrives. */
  readonly trigger?: (f: Fixtures, variables: Variables) => Promise<void>;
  readonly expected: Expected;
}

/** Anonymous and disabled callers are refused before anything else runs. */
const signedIn = (outcomes: Omit<Expected, 'anonymous' | 'disabled'>): Expected => ({
  anonymous: 'UNAUTHENTICATED',
  disabled: 'UNAUTHENTICATED',
  ...outcomes,
});

const EVERY_SIGNED_IN_USER = signedIn({
  owner: 'ok',
  nonOwner: 'ok',
  developer: 'ok',
  admin: 'ok',
});
const OWNER_OR_ADMIN = signedIn({
  owner: 'ok',
  nonOwner: 'FORBIDDEN',
  developer: 'FORBIDDEN',
  admin: 'ok',
});
const DEVELOPER_OR_ADMIN = signedIn({
  owner: 'FORBIDDEN',
  nonOwner: 'FORBIDDEN',
  developer: 'ok',
  admin: 'ok',
});
const ADMIN_ONLY = signedIn({
  owner: 'FORBIDDEN',
  nonOwner: 'FORBIDDEN',
  developer: 'FORBIDDEN',
  admin: 'ok',
});

/** The caller's own id; anonymous callers borrow the owner's, which they never get to use. */
const selfId = (f: Fixtures, caller: Caller) =>
  caller === 'anonymous' ? f.userIds.owner : f.userIds[caller];

const remoteModelInput = (f: Fixtures, name: string) => ({
  name,
  version: '1',
  kind: 'REMOTE',
  task: 'TEXT_CLASSIFICATION',
  endpoint: f.deadEndpoint,
});

export const AUTHORIZATION_TABLE: readonly Row[] = [
  // ------------------------------------------------------------------ Query
  {
    field: 'Query.me',
    checks: 'the caller, null without a valid token',
    document: '{ me { id username role } }',
    expected: {
      anonymous: 'null',
      owner: 'ok',
      nonOwner: 'ok',
      developer: 'ok',
      admin: 'ok',
      disabled: 'null',
    },
  },
  {
    field: 'Query.user',
    checks: 'the owner',
    document: 'query($id: ID!) { user(id: $id) { id username role } }',
    variables: (f) => ({ id: f.userIds.owner }),
    expected: OWNER_OR_ADMIN,
  },
  {
    field: 'Query.user',
    checks: "the owner's contexts",
    document: 'query($id: ID!) { user(id: $id) { id contexts(first: 5) { totalCount } } }',
    variables: (f) => ({ id: f.userIds.owner }),
    expected: OWNER_OR_ADMIN,
  },
  {
    field: 'Query.user',
    checks: 'a user that does not exist',
    document: 'query($id: ID!) { user(id: $id) { id } }',
    variables: (f) => ({ id: f.missingId }),
    expected: signedIn({
      owner: 'FORBIDDEN',
      nonOwner: 'FORBIDDEN',
      developer: 'FORBIDDEN',
      admin: 'null',
    }),
  },
  {
    field: 'Query.users',
    checks: 'everyone, with their contexts',
    document:
      '{ users(first: 5) { totalCount edges { node { id contexts(first: 1) { totalCount } } } } }',
    expected: ADMIN_ONLY,
  },
  {
    field: 'Query.context',
    checks: "the owner's context",
    document: 'query($id: ID!) { context(id: $id) { id version customAttributes } }',
    variables: (f) => ({ id: f.ownerContextId }),
    expected: OWNER_OR_ADMIN,
  },
  {
    field: 'Query.context',
    checks: 'its user, history and model (without endpoint)',
    document: `query($id: ID!) {
      context(id: $id) {
        user { user { username } preferences }
        history(first: 5) { totalCount edges { node { sequence model { name } } } }
        model { model { name kind } }
      }
    }`,
    variables: (f) => ({ id: f.ownerContextId }),
    expected: OWNER_OR_ADMIN,
  },
  {
    field: 'Query.context',
    checks: "its user, history and its model's endpoint",
    document: `query($id: ID!) {
      context(id: $id) {
        user { user { username } }
        history { totalCount }
        model { model { endpoint } }
      }
    }`,
    variables: (f) => ({ id: f.ownerContextId }),
    expected: signedIn({
      owner: 'FORBIDDEN@context.model.model.endpoint',
      nonOwner: 'FORBIDDEN',
      developer: 'FORBIDDEN',
      admin: 'ok',
    }),
  },
  {
    field: 'Query.context',
    checks: 'a context that does not exist',
    document: 'query($id: ID!) { context(id: $id) { id } }',
    variables: (f) => ({ id: f.missingId }),
    expected: signedIn({ owner: 'null', nonOwner: 'null', developer: 'null', admin: 'null' }),
  },
  {
    field: 'Query.contexts',
    checks: "the caller's own",
    document: '{ contexts(first: 5) { totalCount edges { node { id } } } }',
    expected: EVERY_SIGNED_IN_USER,
  },
  {
    field: 'Query.contexts',
    checks: "filtered to the owner's",
    document:
      'query($userId: ID!) { contexts(first: 5, filter: { userId: $userId }) { totalCount } }',
    variables: (f) => ({ userId: f.userIds.owner }),
    expected: OWNER_OR_ADMIN,
  },
  {
    field: 'Query.erasureReceipts',
    checks: 'every receipt',
    document: '{ erasureReceipts(first: 5) { totalCount edges { node { id requestedBy } } } }',
    expected: ADMIN_ONLY,
  },
  {
    field: 'Query.model',
    checks: 'a shipped model',
    document: 'query($id: ID!) { model(id: $id) { id name inputs { name } } }',
    variables: (f) => ({ id: f.modelId }),
    expected: EVERY_SIGNED_IN_USER,
  },
  {
    field: 'Query.model',
    checks: "a REMOTE model's endpoint",
    document: 'query($id: ID!) { model(id: $id) { id endpoint } }',
    variables: (f) => ({ id: f.remoteModelId }),
    expected: signedIn({
      owner: 'FORBIDDEN@model.endpoint',
      nonOwner: 'FORBIDDEN@model.endpoint',
      developer: 'ok',
      admin: 'ok',
    }),
  },
  {
    field: 'Query.models',
    checks: 'the registry',
    document: '{ models { id name task } }',
    expected: EVERY_SIGNED_IN_USER,
  },
  {
    field: 'Query.models',
    checks: "every model's endpoint",
    document: '{ models { id endpoint } }',
    expected: signedIn({
      owner: 'FORBIDDEN@models.endpoint',
      nonOwner: 'FORBIDDEN@models.endpoint',
      developer: 'ok',
      admin: 'ok',
    }),
  },

  // ------------------------------------------------------------------ Mutation
  {
    field: 'Mutation.login',
    checks: 'as another account, whatever token is sent',
    document: `mutation($u: String!, $p: String!) {
      login(username: $u, password: $p) { token user { username } }
    }`,
    variables: (f) => ({ u: f.loginAccount.username, p: f.loginAccount.password }),
    expected: {
      anonymous: 'ok',
      owner: 'ok',
      nonOwner: 'ok',
      developer: 'ok',
      admin: 'ok',
      disabled: 'ok',
    },
  },
  {
    field: 'Mutation.createUser',
    checks: 'a new USER',
    document: 'mutation($input: CreateUserInput!) { createUser(input: $input) { id } }',
    variables: (f) => ({
      input: { username: f.unique('created'), password: 'created-password' },
    }),
    expected: ADMIN_ONLY,
  },
  {
    field: 'Mutation.createUser',
    checks: 'a new ADMIN',
    document: 'mutation($input: CreateUserInput!) { createUser(input: $input) { id } }',
    variables: (f) => ({
      input: { username: f.unique('created-admin'), password: 'created-password', role: 'ADMIN' },
    }),
    expected: ADMIN_ONLY,
  },
  {
    field: 'Mutation.setUserDisabled',
    checks: 'another user, fresh per caller',
    document: 'mutation($id: ID!) { setUserDisabled(id: $id, disabled: true) { id disabled } }',
    variables: async (f) => ({ id: await f.freshUser() }),
    expected: ADMIN_ONLY,
  },
  {
    field: 'Mutation.setUserRole',
    checks: 'another user made ADMIN, fresh per caller',
    document: 'mutation($id: ID!) { setUserRole(id: $id, role: ADMIN) { id role } }',
    variables: async (f) => ({ id: await f.freshUser() }),
    expected: ADMIN_ONLY,
  },
  {
    field: 'Mutation.setUserRole',
    checks: 'the caller made ADMIN',
    document: 'mutation($id: ID!) { setUserRole(id: $id, role: ADMIN) { id role } }',
    variables: (f, caller) => ({ id: selfId(f, caller) }),
    expected: ADMIN_ONLY,
  },
  {
    field: 'Mutation.setUserRole',
    checks: 'a user that does not exist',
    document: 'mutation($id: ID!) { setUserRole(id: $id, role: USER) { id } }',
    variables: (f) => ({ id: f.missingId }),
    expected: signedIn({
      owner: 'FORBIDDEN',
      nonOwner: 'FORBIDDEN',
      developer: 'FORBIDDEN',
      admin: 'NOT_FOUND',
    }),
  },
  {
    field: 'Mutation.createContext',
    checks: "in the caller's name",
    document: `mutation($input: CreateContextInput!) { createContext(input: $input) { id } }`,
    variables: (f) => ({ input: { model: { modelId: f.modelId } } }),
    expected: EVERY_SIGNED_IN_USER,
  },
  {
    field: 'Mutation.createContext',
    checks: "in the owner's name",
    document: `mutation($input: CreateContextInput!) { createContext(input: $input) { id } }`,
    variables: (f) => ({ input: { userId: f.userIds.owner, model: { modelId: f.modelId } } }),
    expected: OWNER_OR_ADMIN,
  },
  {
    field: 'Mutation.updateContext',
    checks: "the owner's context",
    document: `mutation($id: ID!, $patch: UpdateContextInput!) {
      updateContext(id: $id, patch: $patch) { id version }
    }`,
    variables: (f, caller) => ({
      id: f.ownerContextId,
      patch: { customAttributes: { lastWrittenBy: caller } },
    }),
    expected: OWNER_OR_ADMIN,
  },
  {
    field: 'Mutation.updateContexts',
    checks: "the caller's own context",
    document: `mutation($updates: [ContextUpdate!]!) { updateContexts(updates: $updates) { id } }`,
    variables: async (f, caller) => ({
      updates: [
        {
          id: await f.freshContext(caller === 'anonymous' ? undefined : f.userIds[caller]),
          patch: { customAttributes: { batch: 1 } },
        },
      ],
    }),
    expected: EVERY_SIGNED_IN_USER,
  },
  {
    field: 'Mutation.updateContexts',
    checks: "the caller's own context and the owner's",
    document: `mutation($updates: [ContextUpdate!]!) { updateContexts(updates: $updates) { id } }`,
    variables: async (f, caller) => ({
      updates: [
        {
          id: await f.freshContext(caller === 'anonymous' ? undefined : f.userIds[caller]),
          patch: { customAttributes: { batch: 2 } },
        },
        { id: f.ownerContextId, patch: { customAttributes: { batch: 2 } } },
      ],
    }),
    expected: OWNER_OR_ADMIN,
  },
  {
    field: 'Mutation.deleteContext',
    checks: "the owner's context, fresh per caller",
    document: 'mutation($id: ID!) { deleteContext(id: $id) }',
    variables: async (f) => ({ id: await f.freshContext(f.userIds.owner) }),
    expected: OWNER_OR_ADMIN,
  },
  {
    field: 'Mutation.deleteContext',
    checks: 'a context that does not exist',
    document: 'mutation($id: ID!) { deleteContext(id: $id) }',
    variables: (f) => ({ id: f.missingId }),
    expected: signedIn({
      owner: 'NOT_FOUND',
      nonOwner: 'NOT_FOUND',
      developer: 'NOT_FOUND',
      admin: 'NOT_FOUND',
    }),
  },
  {
    field: 'Mutation.deleteUserData',
    checks: 'another user, fresh per caller',
    document: 'mutation($id: ID!) { deleteUserData(userId: $id) { contexts historyEntries user } }',
    variables: async (f) => ({ id: await f.freshUser() }),
    expected: ADMIN_ONLY,
  },
  {
    field: 'Mutation.infer',
    checks: 'without a context',
    document: `mutation($m: ID!) { infer(modelId: $m, input: "good") { output historyEntry { id } } }`,
    variables: (f) => ({ m: f.modelId }),
    expected: EVERY_SIGNED_IN_USER,
  },
  {
    field: 'Mutation.infer',
    checks: "with the owner's context",
    document: `mutation($m: ID!, $c: ID!) {
      infer(modelId: $m, input: "good", contextId: $c) { output historyEntry { sequence } }
    }`,
    variables: (f) => ({ m: f.modelId, c: f.ownerContextId }),
    expected: OWNER_OR_ADMIN,
  },
  {
    field: 'Mutation.infer',
    checks: "the model's endpoint in the result",
    document: `mutation($m: ID!) { infer(modelId: $m, input: "good") { model { name endpoint } } }`,
    variables: (f) => ({ m: f.modelId }),
    expected: signedIn({
      owner: 'FORBIDDEN@infer.model.endpoint',
      nonOwner: 'FORBIDDEN@infer.model.endpoint',
      developer: 'ok',
      admin: 'ok',
    }),
  },
  {
    field: 'Mutation.registerModel',
    checks: 'a REMOTE model',
    document: 'mutation($input: RegisterModelInput!) { registerModel(input: $input) { id } }',
    variables: (f) => ({ input: remoteModelInput(f, f.unique('registered')) }),
    expected: DEVELOPER_OR_ADMIN,
  },
  {
    field: 'Mutation.deleteModel',
    checks: 'a model, fresh per caller',
    document: 'mutation($id: ID!) { deleteModel(id: $id) }',
    variables: async (f) => ({ id: await f.freshModel() }),
    expected: DEVELOPER_OR_ADMIN,
  },

  // ------------------------------------------------------------------ Subscription
  {
    field: 'Subscription.contextUpdated',
    checks: "the owner's context, fresh per caller",
    document: 'subscription($c: ID!) { contextUpdated(contextId: $c) { id version } }',
    variables: async (f) => ({ c: await f.freshContext(f.userIds.owner) }),
    trigger: (f, variables) => f.touchContext(variables.c as string),
    expected: OWNER_OR_ADMIN,
  },
  {
    field: 'Subscription.contextUpdated',
    checks: 'a context that does not exist',
    document: 'subscription($c: ID!) { contextUpdated(contextId: $c) { id } }',
    variables: (f) => ({ c: f.missingId }),
    expected: signedIn({
      owner: 'NOT_FOUND',
      nonOwner: 'NOT_FOUND',
      developer: 'NOT_FOUND',
      admin: 'NOT_FOUND',
    }),
  },
  {
    field: 'Subscription.contextHistory',
    checks: "the owner's context, fresh per caller",
    document: `subscription($c: ID!) {
      contextHistory(contextId: $c) { sequence contextId model { name } }
    }`,
    variables: async (f) => ({ c: await f.freshContext(f.userIds.owner) }),
    trigger: (f, variables) => f.appendHistory(variables.c as string),
    expected: OWNER_OR_ADMIN,
  },
  {
    field: 'Subscription.contextHistory',
    checks: "the model's endpoint in each entry",
    document: `subscription($c: ID!) { contextHistory(contextId: $c) { sequence model { endpoint } } }`,
    variables: async (f, caller) => ({
      c: await f.freshContext(caller === 'anonymous' ? undefined : f.userIds[caller]),
    }),
    trigger: (f, variables) => f.appendHistory(variables.c as string),
    expected: signedIn({
      owner: 'FORBIDDEN@contextHistory.model.endpoint',
      nonOwner: 'FORBIDDEN@contextHistory.model.endpoint',
      developer: 'ok',
      admin: 'ok',
    }),
  },
];
