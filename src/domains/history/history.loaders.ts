import DataLoader from 'dataloader';
import { type HistoryPage, type HistoryService, type HistoryWindow } from './history.service';

export interface HistoryLoaders {
  /** Key: `{ contextId, window }`; all keys with the same window share one query. */
  readonly historyPage: DataLoader<
    { contextId: string; window: HistoryWindow },
    HistoryPage,
    string
  >;
  readonly historyCount: DataLoader<string, number>;
}

const windowKey = (w: HistoryWindow) => `${w.direction}:${w.size}:${w.bound ?? ''}`;

export function createHistoryLoaders(history: HistoryService): HistoryLoaders {
  return {
    historyPage: new DataLoader(
      async (keys) => {
        const groups = new Map<string, { window: HistoryWindow; ids: string[] }>();
        for (const key of keys) {
          const k = windowKey(key.window);
          const group = groups.get(k) ?? { window: key.window, ids: [] };
          group.ids.push(key.contextId);
          groups.set(k, group);
        }
        const results = new Map<string, Map<string, HistoryPage>>();
        await Promise.all(
          [...groups].map(async ([k, g]) => results.set(k, await history.pages(g.ids, g.window))),
        );
        return keys.map((key) => results.get(windowKey(key.window))!.get(key.contextId)!);
      },
      { cacheKeyFn: (key) => `${key.contextId}|${windowKey(key.window)}` },
    ),
    historyCount: new DataLoader(async (ids) => {
      const counts = await history.counts(ids);
      return ids.map((id) => counts.get(id) ?? 0);
    }),
  };
}
