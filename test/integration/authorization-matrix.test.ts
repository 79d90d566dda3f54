import { setTimeout as sleep } from 'node:timers/promises';
import { randomUUID } from 'node:crypto';
import {
  buildClientSchema,
  getIntrospectionQuery,
  Kind,
  parse,
  validate,
  type GraphQLFormattedError,
  type GraphQLSchema,
  type IntrospectionQuery,
} from 'graphql';
import { createClient as createWsClient } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { findFreePort } from '../../src/db/embedded-postgres';
import {
  AUTHORIZATION_TABLE,
  CALLERS,
  type Caller,
  type Fixtures,
  type Row,
  type Variables,
} from '../support/authorization-table';
import { startTestApp, type TestApp } from '../support/test-app';

/**
 * Every row of the authorization table, run as every caller against the real server
 * in-process: queries and mutations over HTTP, subscriptions over graphql-ws. The table, not
 * this file, says who may do what.
 */

const SUBSCRIPTION_WAIT_MS = 10_000; // 10 s
const TRIGGER_EVERY_MS = 250; // 250 ms: a trigger sent before the stream listens is lost
const WS_UNAUTHORIZED = 4401; // src/server/ws.ts WsCloseCode.Unauthorized

type Observed = Record<Caller, string>;

interface ExecutionResultLike {
  readonly data?: Record<string, unknown> | null;
  readonly errors?: readonly GraphQLFormattedError[];
}

/** `CODE`, or `CODE@a.b.c` for an error below the root field; list indices are left out. */
function describeError(error: GraphQLFormattedError): string {
  const code = typeof error.extensions?.code === 'string' ? error.extensions.code : 'NO_CODE';
  const path = (error.path ?? []).filter((segment) => typeof segment === 'string');
  return path.length > 1 ? `${code}@${path.join('.')}` : code;
}

/** The table's vocabulary for one response (see `Outcome`). */
function outcomeOf(result: ExecutionResultLike, rootField: string): string {
  if (result.errors?.length) {
    return [...new Set(result.errors.map(describeError))].sort().join(' + ');
  }
  const value = result.data?.[rootField];
  return value === null || value === undefined ? 'null' : 'ok';
}

/**
 * What graphql-ws hands the sink's `error`: the errors of an `error` message, or the close
 * event when the server closed the socket (4401: the token in connection_init was refused).
 */
function subscriptionErrorOutcome(error: unknown): string {
  if (Array.isArray(error)) {
    return outcomeOf({ errors: error as GraphQLFormattedError[] }, '');
  }
  const code = (error as { code?: unknown } | null)?.code;
  if (code === WS_UNAUTHORIZED) {
    return 'UNAUTHENTICATED';
  }
  return typeof code === 'number' ? `CLOSED ${code}` : `ERROR ${String(error)}`;
}

const rootFieldOf = (row: Row) => row.field.slice(row.field.indexOf('.') + 1);
const labelOf = (row: Row) => `${row.field}: ${row.checks}`;

const SHORT: Readonly<Record<string, string>> = {
  UNAUTHENTICATED: 'UNAUTH',
  FORBIDDEN: 'FORBID',
};
/** A cell of the printed matrix: short codes, and only the last segment of a nested path. */
function cell(outcome: string): string {
  return outcome
    .split(' + ')
    .map((part) => {
      const [code = '', path] = part.split('@');
      const short = SHORT[code] ?? code;
      return path ? `${short}@${path.split('.').at(-1)}` : short;
    })
    .join('+');
}

function printMatrix(observed: ReadonlyMap<Row, Observed>, rootFields: number): void {
  const rows = AUTHORIZATION_TABLE.filter((row) => observed.has(row));
  const cells = rows.map((row) =>
    CALLERS.map((caller) => {
      const got = observed.get(row)![caller];
      return got === row.expected[caller]
        ? cell(got)
        : `✗ ${cell(got)} (want ${cell(row.expected[caller])})`;
    }),
  );
  const labels = rows.map(labelOf);
  const labelWidth = Math.max(...labels.map((l) => l.length), 'field: case'.length);
  const widths = CALLERS.map((caller, i) =>
    Math.max(caller.length, ...cells.map((line) => line[i]!.length)),
  );
  const line = (label: string, values: readonly string[]) =>
    [label.padEnd(labelWidth), ...values.map((v, i) => v.padEnd(widths[i]!))].join(' │ ');
  const mismatches = cells.flat().filter((c) => c.startsWith('✗')).length;
  console.log(
    [
      `Authorization matrix: ${rows.length} rows over ${rootFields} root fields × ${CALLERS.length} callers, ` +
        `${rows.length * CALLERS.length} cells, ${mismatches} not as the table says (✗)`,
      line('field: case', CALLERS),
      line(
        '─'.repeat(labelWidth),
        widths.map((w) => '─'.repeat(w)),
      ),
      ...labels.map((label, i) => line(label, cells[i]!)),
    ].join('\n'),
  );
}

describe('authorization matrix', () => {
  let t: TestApp;
  let served: GraphQLSchema;
  let fixtures: Fixtures;
  const tokens: Partial<Record<Caller, string>> = {};
  const observed = new Map<Row, Observed>();

  /** A setup step as the admin; it must succeed, or the rows would test nothing. */
  const asAdmin = async (document: string, variables: Variables = {}): Promise<any> => {
    const res = await t.gql(document, variables, t.adminToken);
    if (res.errors?.length || !res.data) {
      throw new Error(`fixture operation failed: ${document}\n${JSON.stringify(res.errors)}`);
    }
    return res.data;
  };

  beforeAll(async () => {
    t = await startTestApp({ env: { CONTEXT_SWEEP_INTERVAL_MS: '0' } });

    const introspection = await t.gql<IntrospectionQuery>(getIntrospectionQuery());
    expect(introspection.errors).toBeUndefined();
    served = buildClientSchema(introspection.data!);

    let counter = 0;
    const unique = (prefix: string) => `matrix-${prefix}-${(counter += 1)}`;
    const { models } = await asAdmin('{ models { id name } }');
    const modelId = (models as { id: string; name: string }[]).find(
      (m) => m.name === 'sentiment-afinn',
    )!.id;
    const deadEndpoint = `http://127.0.0.1:${await findFreePort()}`;
    const registerRemote = async () =>
      (
        await asAdmin(
          'mutation($input: RegisterModelInput!) { registerModel(input: $input) { id } }',
          {
            input: {
              name: unique('remote'),
              version: '1',
              kind: 'REMOTE',
              task: 'TEXT_CLASSIFICATION',
              endpoint: deadEndpoint,
            },
          },
        )
      ).registerModel.id as string;
    const createContext = async (userId: string | undefined, onModel = modelId) =>
      (
        await asAdmin(
          'mutation($input: CreateContextInput!) { createContext(input: $input) { id } }',
          { input: { ...(userId ? { userId } : {}), model: { modelId: onModel } } },
        )
      ).createContext.id as string;
    const appendHistory = async (contextId: string) => {
      await asAdmin(
        'mutation($m: ID!, $c: ID!) { infer(modelId: $m, input: "good", contextId: $c) { cached } }',
        { m: modelId, c: contextId },
      );
    };
    const createAccount = async (username: string, password: string) =>
      (
        await asAdmin('mutation($input: CreateUserInput!) { createUser(input: $input) { id } }', {
          input: { username, password },
        })
      ).createUser.id as string;

    const owner = await t.createUser('matrix-owner');
    const nonOwner = await t.createUser('matrix-non-owner');
    const developer = await t.createUser('matrix-developer', 'MODEL_DEVELOPER');
    const disabled = await t.createUser('matrix-disabled');
    await asAdmin('mutation($id: ID!) { setUserDisabled(id: $id, disabled: true) { id } }', {
      id: disabled.id,
    });
    const loginAccount = { username: 'matrix-login', password: 'matrix-login-password' };
    await createAccount(loginAccount.username, loginAccount.password);
    Object.assign(tokens, {
      owner: owner.token,
      nonOwner: nonOwner.token,
      developer: developer.token,
      admin: t.adminToken,
      disabled: disabled.token,
    });

    const remoteModelId = await registerRemote();
    const ownerContextId = await createContext(owner.id, remoteModelId);
    await appendHistory(ownerContextId);

    fixtures = {
      userIds: {
        owner: owner.id,
        nonOwner: nonOwner.id,
        developer: developer.id,
        admin: (await asAdmin('{ me { id } }')).me.id as string,
        disabled: disabled.id,
      },
      ownerContextId,
      modelId,
      remoteModelId,
      deadEndpoint,
      missingId: randomUUID(),
      loginAccount,
      unique,
      freshContext: (userId) => createContext(userId),
      async freshUser() {
        const id = await createAccount(unique('subject'), 'subject-password');
        await createContext(id);
        return id;
      },
      freshModel: registerRemote,
      async touchContext(contextId) {
        await asAdmin(
          'mutation($id: ID!) { updateContext(id: $id, patch: { customAttributes: { touched: true } }) { id } }',
          { id: contextId },
        );
      },
      appendHistory,
    };
  });

  afterAll(async () => {
    if (served) {
      printMatrix(observed, servedRootFields().length);
    }
    await t?.stop();
  });

  /** `Type.field` for every root field the running server serves. */
  const servedRootFields = () =>
    [served.getQueryType(), served.getMutationType(), served.getSubscriptionType()].flatMap(
      (type) => (type ? Object.keys(type.getFields()).map((field) => `${type.name}.${field}`) : []),
    );

  it('has a row for every root field the server serves', () => {
    const covered = new Set(AUTHORIZATION_TABLE.map((row) => row.field));
    const missing = servedRootFields().filter((field) => !covered.has(field));
    expect(missing, 'root fields without a row in test/support/authorization-table.ts').toEqual([]);
  });

  it('has no row for a root field the server no longer serves', () => {
    const servedFields = new Set(servedRootFields());
    const stale = [...new Set(AUTHORIZATION_TABLE.map((row) => row.field))].filter(
      (field) => !servedFields.has(field),
    );
    expect(stale, 'rows for root fields the schema no longer has').toEqual([]);
  });

  it('gives each row a valid operation on its own root field, and a name of its own', () => {
    const problems: string[] = [];
    for (const row of AUTHORIZATION_TABLE) {
      const document = parse(row.document);
      const errors = validate(served, document).map((e) => e.message);
      const operations = document.definitions.filter((d) => d.kind === Kind.OPERATION_DEFINITION);
      const selections = operations.flatMap((op) =>
        op.selectionSet.selections.map((s) =>
          s.kind === Kind.FIELD && !s.alias
            ? `${served.getRootType(op.operation)?.name}.${s.name.value}`
            : '(not a plain field)',
        ),
      );
      if (errors.length) {
        problems.push(`${labelOf(row)}: ${errors.join('; ')}`);
      }
      if (selections.length !== 1 || selections[0] !== row.field) {
        problems.push(`${labelOf(row)}: selects ${selections.join(', ')}`);
      }
    }
    const labels = AUTHORIZATION_TABLE.map(labelOf);
    problems.push(...labels.filter((l, i) => labels.indexOf(l) !== i).map((l) => `twice: ${l}`));
    expect(problems).toEqual([]);
  });

  /** Subscribes as the caller, triggers until the first event, and describes that event. */
  async function observeSubscription(
    row: Row,
    caller: Caller,
    variables: Variables,
  ): Promise<string> {
    const token = tokens[caller];
    const client = createWsClient({
      url: t.app.url.replace(/^http/, 'ws'),
      webSocketImpl: WebSocket,
      connectionParams: token === undefined ? undefined : { authorization: `Bearer ${token}` },
      retryAttempts: 0,
      lazy: true,
    });
    let first: string | undefined;
    try {
      const unsubscribe = client.subscribe(
        { query: row.document, variables },
        {
          next: (result) => {
            first ??= outcomeOf(result as ExecutionResultLike, rootFieldOf(row));
          },
          error: (error) => {
            first ??= subscriptionErrorOutcome(error);
          },
          complete: () => {
            first ??= 'COMPLETED without an event';
          },
        },
      );
      const deadline = Date.now() + SUBSCRIPTION_WAIT_MS;
      let nextTrigger = Date.now() + 50;
      while (first === undefined && Date.now() < deadline) {
        if (row.trigger && Date.now() >= nextTrigger) {
          await row.trigger(fixtures, variables);
          nextTrigger = Date.now() + TRIGGER_EVERY_MS;
        }
        await sleep(10);
      }
      unsubscribe();
      return first ?? `no event within ${SUBSCRIPTION_WAIT_MS} ms`;
    } finally {
      await client.dispose();
    }
  }

  async function observe(row: Row, caller: Caller): Promise<string> {
    const variables = (await row.variables?.(fixtures, caller)) ?? {};
    if (row.field.startsWith('Subscription.')) {
      return observeSubscription(row, caller, variables);
    }
    const res = await t.gql(row.document, variables, tokens[caller]);
    return outcomeOf(res as ExecutionResultLike, rootFieldOf(row));
  }

  describe.each(['Query', 'Mutation', 'Subscription'])('%s', (type) => {
    for (const row of AUTHORIZATION_TABLE.filter((r) => r.field.startsWith(`${type}.`))) {
      it(`${row.field.slice(type.length + 1)}: ${row.checks}`, async () => {
        const got = {} as Observed;
        for (const caller of CALLERS) {
          got[caller] = await observe(row, caller);
        }
        observed.set(row, got);
        expect(got).toEqual(row.expected);
      });
    }
  });
});
