import DataLoader from 'dataloader';
import { type ContextRecord, type ContextService } from './context.service';

export interface UserContextsKey {
  readonly userId: string;
  readonly size: number;
  readonly after: string | null;
}

export interface ContextLoaders {
  /** User.contexts for every user of a page, one query per distinct (first, after). */
  readonly contextsByUser: DataLoader<
    UserContextsKey,
    { rows: ContextRecord[]; hasNextPage: boolean },
    string
  >;
  readonly contextCountByUser: DataLoader<string, number>;
}

const argsKey = (k: UserContextsKey) => `${k.size}:${k.after ?? ''}`;

export function createContextLoaders(contexts: ContextService): ContextLoaders {
  return {
    contextsByUser: new DataLoader(
      async (keys) => {
        const groups = new Map<string, UserContextsKey[]>();
        for (const key of keys) {
          groups.set(argsKey(key), [...(groups.get(argsKey(key)) ?? []), key]);
        }
        const pages = new Map<string, Awaited<ReturnType<ContextService['pagesByUser']>>>();
        await Promise.all(
          [...groups].map(async ([k, group]) =>
            pages.set(
              k,
              await contexts.pagesByUser(
                group.map((g) => g.userId),
                group[0]!.size,
                group[0]!.after,
              ),
            ),
          ),
        );
        return keys.map((key) => pages.get(argsKey(key))!.get(key.userId)!);
      },
      { cacheKeyFn: (key) => `${key.userId}|${argsKey(key)}` },
    ),
    contextCountByUser: new DataLoader(async (ids) => {
      const counts = await contexts.countsByUser(ids);
      return ids.map((id) => counts.get(id) ?? 0);
    }),
  };
}
