import {
  Kind,
  createSourceEventStream,
  execute,
  getOperationAST,
  visit,
  type ASTNode,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
} from 'graphql';
import { type RequestContext } from '../graphql/context';

type EventResult = ExecutionResult | Promise<ExecutionResult>;

/** Applies `map` to every value of `source`, passing `return` and `throw` through. */
function mapAsyncIterable<T, U>(
  source: AsyncIterable<T>,
  map: (value: T) => U | Promise<U>,
): AsyncIterableIterator<U> {
  const iterator = source[Symbol.asyncIterator]();
  const mapped: AsyncIterableIterator<U> = {
    async next() {
      const step = await iterator.next();
      if (step.done) {
        return { done: true, value: undefined };
      }
      try {
        return { done: false, value: await map(step.value) };
      } catch (error) {
        // As graphql-js does: a failed mapping ends the source (and its pub/sub listener).
        await iterator.return?.().catch(() => undefined);
        throw error;
      }
    },
    async return() {
      await iterator.return?.();
      return { done: true, value: undefined };
    },
    async throw(error?: unknown) {
      if (iterator.throw) {
        const step = await iterator.throw(error);
        return step.done
          ? { done: true, value: undefined }
          : { done: false, value: await map(step.value) };
      }
      throw error;
    },
    [Symbol.asyncIterator]: () => mapped,
  };
  return mapped;
}

const isAsyncIterable = (value: unknown): value is AsyncIterable<unknown> =>
  typeof value === 'object' && value !== null && Symbol.asyncIterator in value;

/**
 * graphql-js's `subscribe`, except that subscribers who would compute the same answer to an
 * event share one execution of it.
 *
 * graphql-js executes the selection set once per subscriber and event: for an entry appended
 * to a context with 1,000 subscribers that is 1,000 executions (argument coercion, field
 * rules, resolvers) of the same document over the same object, most of a fan-out's CPU. Here
 * the answer is computed once per event object and *share key*: the document, the operation,
 * the viewer (id and role, which is all the field rules look at), and the variables the
 * selection set uses. The subscription field's own arguments are left out of the key for the
 * fields in `passThrough`, whose per-event resolver returns a function of the event alone
 * (the arguments already chose the stream in `subscribe`); resumed clients, whose
 * `afterSequence` differ, then share too. Events of one stream are distinct objects, so a
 * shared answer never crosses events, and it goes when the event object is collected.
 */
export function createSharedSubscribe(passThrough: ReadonlySet<string>) {
  const answers = new WeakMap<object, Map<string, EventResult>>();
  const documentIds = new WeakMap<DocumentNode, number>();
  let nextDocumentId = 0;
  const variableUse = new WeakMap<DocumentNode, Map<string, Set<string> | null>>();

  /** Variables the answer to one event can depend on; null when it may depend on all. */
  const variablesOfEvents = (args: ExecutionArgs): Set<string> | null => {
    const operationName = args.operationName ?? '';
    let byOperation = variableUse.get(args.document);
    if (!byOperation) {
      byOperation = new Map();
      variableUse.set(args.document, byOperation);
    }
    if (!byOperation.has(operationName)) {
      byOperation.set(operationName, usedByEvents(args));
    }
    return byOperation.get(operationName)!;
  };

  const usedByEvents = (args: ExecutionArgs): Set<string> | null => {
    const operation = getOperationAST(args.document, args.operationName);
    if (!operation) {
      return null;
    }
    const names = new Set<string>();
    const collect = (node: ASTNode) =>
      visit(node, {
        [Kind.VARIABLE](variable) {
          names.add(variable.name.value);
        },
      });
    for (const selection of operation.selectionSet.selections) {
      if (selection.kind !== Kind.FIELD || !passThrough.has(selection.name.value)) {
        return null;
      }
      selection.directives?.forEach(collect);
      if (selection.selectionSet) {
        collect(selection.selectionSet);
      }
    }
    for (const definition of args.document.definitions) {
      if (definition.kind === Kind.FRAGMENT_DEFINITION) {
        collect(definition);
      }
    }
    return names;
  };

  const shareKey = (args: ExecutionArgs): string | undefined => {
    const viewer = (args.contextValue as Partial<RequestContext> | undefined)?.user;
    const used = variablesOfEvents(args);
    if (viewer === undefined || used === null) {
      return undefined;
    }
    let documentId = documentIds.get(args.document);
    if (documentId === undefined) {
      documentId = nextDocumentId++;
      documentIds.set(args.document, documentId);
    }
    const variables = args.variableValues ?? {};
    // Given or not is part of the key: an omitted variable takes its default, which `null` does not.
    const values = [...used]
      .sort()
      .map((name) => (Object.hasOwn(variables, name) ? [name, variables[name]] : [name]));
    return JSON.stringify([
      documentId,
      args.operationName ?? null,
      viewer ? [viewer.id, viewer.role] : null,
      values,
    ]);
  };

  return async function subscribe(
    args: ExecutionArgs,
  ): Promise<AsyncIterableIterator<ExecutionResult> | ExecutionResult> {
    const stream = await createSourceEventStream(args);
    if (!isAsyncIterable(stream)) {
      return stream;
    }
    const key = shareKey(args);
    return mapAsyncIterable(stream, (event) => {
      if (key === undefined || typeof event !== 'object' || event === null) {
        return execute({ ...args, rootValue: event });
      }
      let byKey = answers.get(event);
      if (!byKey) {
        byKey = new Map();
        answers.set(event, byKey);
      }
      let answer = byKey.get(key);
      if (!answer) {
        answer = execute({ ...args, rootValue: event });
        byKey.set(key, answer);
      }
      return answer;
    });
  };
}
