import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { type ApolloServerPlugin } from '@apollo/server';
import { GraphQLError } from 'graphql';
import { type KeyValueStore } from '../cache/kv-store';

/**
 * Apollo's KeyValueCache over the shared store, so a hash registered on one replica works
 * on all. Apollo itself prefixes its keys with `apq:`.
 */
export function persistedQueryCache(kv: KeyValueStore, defaultTtlSeconds: number) {
  return {
    async get(key: string): Promise<string | undefined> {
      return (await kv.get(key)) ?? undefined;
    },
    async set(key: string, value: string, options?: { ttl?: number | null }): Promise<void> {
      await kv.set(key, value, options?.ttl ?? defaultTtlSeconds);
    },
    async delete(key: string): Promise<void> {
      await kv.del(key);
    },
  };
}

/** Makes every trusted document reachable by hash alone, as if a client had registered it. */
export async function preloadTrustedDocuments(
  kv: KeyValueStore,
  documents: ReadonlyMap<string, string>,
  ttlSeconds: number,
): Promise<void> {
  for (const [hash, body] of documents) {
    await kv.set(`apq:${hash}`, body, ttlSeconds);
  }
}

export const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/**
 * Known operations, from a manifest in Apollo's format
 * (`{ format: "apollo-persisted-query-manifest", operations: [{ id, body }] }`) or a plain
 * `{ "<sha256>": "<query>" }` object. Ids are checked against the bodies' real hashes.
 */
export async function loadTrustedDocuments(file: string): Promise<Map<string, string>> {
  const parsed: unknown = JSON.parse(await readFile(file, 'utf8'));
  const entries: [string, string][] =
    parsed &&
    typeof parsed === 'object' &&
    Array.isArray((parsed as { operations?: unknown }).operations)
      ? (parsed as { operations: { id: string; body: string }[] }).operations.map((o) => [
          o.id,
          o.body,
        ])
      : Object.entries(parsed as Record<string, string>);
  const documents = new Map<string, string>();
  for (const [id, body] of entries) {
    if (typeof body !== 'string' || sha256(body) !== id) {
      throw new Error(`Persisted query ${id} does not match the sha256 of its body`);
    }
    documents.set(id, body);
  }
  return documents;
}

/**
 * Production lock-down: only operations listed in the manifest run, whether a client sends
 * the text or just its hash; anything else is refused before parsing.
 */
export function trustedDocumentsPlugin(documents: ReadonlyMap<string, string>): ApolloServerPlugin {
  return {
    async requestDidStart() {
      return {
        // Thrown here (not in didResolveSource, which Apollo treats as an internal failure).
        async didResolveOperation({ source }) {
          if (!documents.has(sha256(source))) {
            throw new GraphQLError('Only persisted operations are accepted by this server', {
              extensions: { code: 'PERSISTED_QUERY_NOT_ALLOWED', http: { status: 400 } },
            });
          }
        },
      };
    },
  };
}
