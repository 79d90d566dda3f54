import {
  GraphQLInt,
  GraphQLNonNull,
  GraphQLObjectType,
  GraphQLSchema,
  GraphQLString,
  parse,
  type ExecutionResult,
} from 'graphql';
import { describe, expect, it } from 'vitest';
import { createSharedSubscribe } from '../../../src/server/shared-subscribe';

/** One live source per test: every subscriber's stream yields the same event objects. */
function setup() {
  const listeners = new Set<(event: { n: number }) => void>();
  let labelCalls = 0;
  const Event = new GraphQLObjectType({
    name: 'Event',
    fields: {
      n: { type: GraphQLInt },
      label: {
        type: GraphQLString,
        args: { prefix: { type: GraphQLString } },
        resolve: (
          event: { n: number },
          args: { prefix?: string },
          ctx: { user: { role: string } },
        ) => {
          labelCalls += 1;
          return `${args.prefix ?? ''}${ctx.user.role}:${event.n}`;
        },
      },
    },
  });
  const stream = () => {
    const queue: { n: number }[] = [];
    let wake: (() => void) | undefined;
    const listener = (event: { n: number }) => {
      queue.push(event);
      wake?.();
    };
    listeners.add(listener);
    const iterator: AsyncIterableIterator<{ n: number }> = {
      async next() {
        while (queue.length === 0) {
          await new Promise<void>((resolve) => (wake = resolve));
        }
        return { done: false, value: queue.shift()! };
      },
      async return() {
        listeners.delete(listener);
        return { done: true, value: undefined };
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  };
  const subscriptionField = {
    type: Event,
    args: { topic: { type: new GraphQLNonNull(GraphQLString) } },
    subscribe: stream,
    resolve: (event: { n: number }) => event,
  };
  const schema = new GraphQLSchema({
    query: new GraphQLObjectType({ name: 'Query', fields: { ok: { type: GraphQLInt } } }),
    subscription: new GraphQLObjectType({
      name: 'Subscription',
      fields: { passThrough: subscriptionField, other: subscriptionField },
    }),
  });
  return {
    schema,
    subscribe: createSharedSubscribe(new Set(['passThrough'])),
    emit: (event: { n: number }) => listeners.forEach((listener) => listener(event)),
    labelCalls: () => labelCalls,
  };
}

type Stream = AsyncIterableIterator<ExecutionResult>;

describe('createSharedSubscribe', () => {
  const open = async (
    t: ReturnType<typeof setup>,
    query: string,
    variables: Record<string, unknown>,
    user: { id: string; role: string },
  ) =>
    (await t.subscribe({
      schema: t.schema,
      document: parse(query),
      variableValues: variables,
      contextValue: { user },
    })) as Stream;

  const QUERY =
    'subscription($topic: String!, $prefix: String) { passThrough(topic: $topic) { n label(prefix: $prefix) } }';
  const alice = { id: 'a', role: 'USER' };

  it('executes an event once for subscribers who would get the same answer', async () => {
    const t = setup();
    const document = parse(QUERY);
    const streams = await Promise.all(
      ['t1', 't2', 't3'].map(
        async (topic) =>
          (await t.subscribe({
            schema: t.schema,
            document,
            variableValues: { topic, prefix: '>' },
            contextValue: { user: alice },
          })) as Stream,
      ),
    );
    const answers = streams.map((s) => s.next());
    t.emit({ n: 1 });
    const results = await Promise.all(answers);
    expect(results.map((r) => r.value)).toEqual(
      Array(3).fill({ data: { passThrough: { n: 1, label: '>USER:1' } } }),
    );
    expect(t.labelCalls()).toBe(1);

    const next = streams.map((s) => s.next());
    t.emit({ n: 2 });
    expect((await Promise.all(next)).map((r) => r.value.data.passThrough.n)).toEqual([2, 2, 2]);
    expect(t.labelCalls()).toBe(2);
  });

  it('executes separately for other viewers, other selection variables and other fields', async () => {
    const t = setup();
    const document = parse(QUERY);
    const other = 'subscription($topic: String!) { other(topic: $topic) { n label } }';
    const streams = [
      await open(t, QUERY, { topic: 't', prefix: '>' }, alice),
      await t.subscribe({
        schema: t.schema,
        document,
        variableValues: { topic: 't', prefix: '>' },
        contextValue: { user: { id: 'a', role: 'ADMIN' } },
      }),
      await open(t, QUERY, { topic: 't', prefix: '#' }, alice),
      await open(t, other, { topic: 't1' }, alice),
      await open(t, other, { topic: 't2' }, alice),
    ] as Stream[];
    const answers = streams.map((s) => s.next());
    t.emit({ n: 7 });
    const labels = (await Promise.all(answers)).map((r) => {
      const data = r.value.data as Record<string, { label: string }>;
      return (data.passThrough ?? data.other)!.label;
    });
    expect(labels).toEqual(['>USER:7', '>ADMIN:7', '#USER:7', 'USER:7', 'USER:7']);
    // Not passThrough: the field's arguments are part of the key, so t1 and t2 run apart.
    expect(t.labelCalls()).toBe(5);
  });

  it('tells an omitted variable, which takes its default, from one given as null', async () => {
    const t = setup();
    const query =
      'subscription($topic: String!, $prefix: String = ">") { passThrough(topic: $topic) { label(prefix: $prefix) } }';
    const omitted = await open(t, query, { topic: 't' }, alice);
    const given = await open(t, query, { topic: 't', prefix: null }, alice);
    const answers = [omitted.next(), given.next()];
    t.emit({ n: 3 });
    const labels = (await Promise.all(answers)).map(
      (r) => (r.value.data as { passThrough: { label: string } }).passThrough.label,
    );
    expect(labels).toEqual(['>USER:3', 'USER:3']);
  });

  it('ends the source when a subscriber leaves', async () => {
    const t = setup();
    const stream = await open(t, QUERY, { topic: 't' }, alice);
    await stream.return?.();
    t.emit({ n: 1 });
    expect(t.labelCalls()).toBe(0);
  });
});
