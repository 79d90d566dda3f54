export interface GraphQLResponse<T = Record<string, any>> {
  readonly status: number;
  readonly data?: T | null;
  readonly errors?: { message: string; path?: string[]; extensions?: Record<string, unknown> }[];
}

/** A tiny GraphQL-over-HTTP client, so tests speak to the server exactly as frontends do. */
export function createClient(url: string) {
  return async function gql<T = Record<string, any>>(
    query: string,
    variables: Record<string, unknown> = {},
    token?: string,
  ): Promise<GraphQLResponse<T>> {
    const res = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      body: JSON.stringify({ query, variables }),
    });
    const body = (await res.json()) as Omit<GraphQLResponse<T>, 'status'>;
    return { status: res.status, ...body };
  };
}

export type GqlClient = ReturnType<typeof createClient>;

/** The `extensions.code` of each error, for compact assertions. */
export const codes = (res: GraphQLResponse<unknown>) =>
  (res.errors ?? []).map((e) => e.extensions?.code);
