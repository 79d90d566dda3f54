import { Field, Int, ObjectType } from 'type-graphql';
import { badInput } from './errors';

@ObjectType('PageInfo', { description: 'Relay page information.' })
export class PageInfo {
  @Field(() => Boolean)
  hasNextPage!: boolean;

  @Field(() => Boolean)
  hasPreviousPage!: boolean;

  @Field(() => String, { nullable: true })
  startCursor!: string | null;

  @Field(() => String, { nullable: true })
  endCursor!: string | null;
}

/**
 * Cursors are opaque to clients: base64url of the keyset values of the row they point at.
 * They are not signed; a forged cursor only moves the caller within rows they may see anyway.
 */
export function encodeCursor(values: readonly (string | number)[]): string {
  return Buffer.from(JSON.stringify(values)).toString('base64url');
}

export function decodeCursor(cursor: string, arity: number): (string | number)[] {
  try {
    const values: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (
      Array.isArray(values) &&
      values.length === arity &&
      values.every((v) => typeof v === 'string' || typeof v === 'number')
    ) {
      return values as (string | number)[];
    }
  } catch {
    // fall through to the coded error
  }
  throw badInput('Invalid cursor', { argument: 'after' });
}

/** Exactly the form `Date#toISOString` writes: what keyset cursors carry. */
export function isIsoTimestamp(value: unknown): value is string {
  return (
    typeof value === 'string' &&
    /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/.test(value) &&
    !Number.isNaN(Date.parse(value)) &&
    new Date(value).toISOString() === value
  );
}

/** Largest value of a PostgreSQL `integer`. */
export const MAX_INT32 = 2 ** 31 - 1;

/** Checks `first` against the page-size limit; the error names both. */
export function pageSize(first: number | null | undefined, fallback: number, max: number): number {
  const size = first ?? fallback;
  if (!Number.isInteger(size) || size < 0 || size > max) {
    throw badInput(`first must be between 0 and ${max}`, { argument: 'first', max });
  }
  return size;
}

/** A page of rows fetched with LIMIT size + 1, turned into edges and page info. */
export function toPage<T>(
  rows: readonly T[],
  size: number,
  cursorOf: (row: T) => string,
  hasPrevious: boolean,
): { edges: { cursor: string; node: T }[]; pageInfo: PageInfo } {
  const nodes = rows.slice(0, size);
  const edges = nodes.map((node) => ({ cursor: cursorOf(node), node }));
  const pageInfo = Object.assign(new PageInfo(), {
    hasNextPage: rows.length > size,
    hasPreviousPage: hasPrevious,
    startCursor: edges[0]?.cursor ?? null,
    endCursor: edges.at(-1)?.cursor ?? null,
  });
  return { edges, pageInfo };
}

type ClassType<T> = new (...args: never[]) => T;

/**
 * `<Name>Edge` and `<Name>Connection` object types for a node type. `totalCount` is counted
 * only when a client asks for it.
 */
export function connectionTypes<TNode extends object>(name: string, node: ClassType<TNode>) {
  @ObjectType(`${name}Edge`)
  class Edge {
    @Field(() => String)
    cursor!: string;

    @Field(() => node)
    node!: TNode;
  }

  @ObjectType(`${name}Connection`)
  class Connection {
    @Field(() => [Edge])
    edges!: Edge[];

    @Field(() => PageInfo)
    pageInfo!: PageInfo;

    count!: () => Promise<number>;

    @Field(() => Int, { description: 'How many items match, across all pages.' })
    totalCount(): Promise<number> {
      return this.count();
    }
  }

  return { Edge, Connection };
}
