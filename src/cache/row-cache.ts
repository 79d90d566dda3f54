import { randomUUID } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { type PubSub } from '../realtime/pubsub';

export interface RowCacheOptions<T> {
  /** Broadcast channel of this kind of row (see `Topic.rowChanged`). */
  readonly topic: string;
  readonly pubSub: PubSub;
  /** Reads rows from the database; ids it does not return are cached as absent. */
  readonly load: (ids: readonly string[]) => Promise<readonly T[]>;
  readonly idOf: (row: T) => string;
  /**
   * How long a copy may be kept without news. Changes reach every replica through pub/sub at
   * once; this only bounds how long a copy can outlive a lost message. 0 turns caching off.
   */
  readonly ttlMs: number;
  /** @default 10_000 */
  readonly max?: number;
  readonly onLookup?: (hit: boolean) => void;
  /** Told of every change (made here or on another replica), after the copy is forgotten. */
  readonly onChange?: (id: string) => void;
}

/** What a service that keeps a kind of row takes from configuration. */
export type RowCacheSettings = Pick<RowCacheOptions<unknown>, 'ttlMs' | 'onLookup'>;

/** No copies: every lookup reads the database. */
export const NO_ROW_COPIES: RowCacheSettings = { ttlMs: 0 };

interface Entry<T> {
  readonly row: T | null;
}

/**
 * Rows this replica read lately, for lookups made on nearly every request: the caller's user
 * row and the model an `infer` names. Without it each request pays a database round trip
 * (and the database's CPU) for rows that change a few times a day.
 *
 * Correctness rests on `changed`: the service that writes a row calls it after commit; it
 * forgets the copy here at once and tells every other replica through pub/sub. A load that
 * was already running when a change arrived is not stored (the generation check), so a slow
 * read cannot put an old row back.
 */
export class ReplicaRowCache<T> {
  private readonly rows: LRUCache<string, Entry<T>>;
  private readonly loading = new Map<string, Promise<T | null>>();
  private generation = 0;
  /** While pub/sub may be losing messages, copies are neither served nor kept. */
  private suspended = false;
  private stopListening: (() => void) | undefined;
  /** Marks this replica's own messages, which it has acted on before sending them. */
  private readonly origin = randomUUID();

  constructor(private readonly options: RowCacheOptions<T>) {
    this.rows = new LRUCache<string, Entry<T>>({
      max: options.max ?? 10_000,
      ttl: Math.max(1, options.ttlMs),
    });
  }

  /**
   * Starts following changes made on other replicas. While pub/sub is down (changes may be
   * missed) rows are read from the database each time, and copies kept before are forgotten.
   */
  async start(): Promise<void> {
    this.stopListening = await this.options.pubSub.listen(this.options.topic, (message) => {
      const { id, origin } = (message ?? {}) as { id?: unknown; origin?: unknown };
      if (typeof id === 'string' && origin !== this.origin) {
        this.forget(id);
        this.options.onChange?.(id);
      }
    });
    this.suspended = !this.options.pubSub.delivering;
    this.options.pubSub.onDelivery((complete) => {
      this.clear();
      this.suspended = !complete;
    });
  }

  stop(): void {
    this.stopListening?.();
    this.clear();
  }

  async get(id: string): Promise<T | null> {
    return (await this.getMany([id]))[0]!;
  }

  /** The rows of `ids` in order (null where none exists); misses are read in one query. */
  async getMany(ids: readonly string[]): Promise<(T | null)[]> {
    if (this.options.ttlMs === 0 || this.suspended) {
      return this.read(ids);
    }
    const missing = new Set<string>();
    for (const id of ids) {
      const hit = this.rows.has(id);
      this.options.onLookup?.(hit);
      if (!hit && !this.loading.has(id)) {
        missing.add(id);
      }
    }
    if (missing.size > 0) {
      this.startLoading([...missing]);
    }
    return Promise.all(ids.map((id) => this.rows.get(id)?.row ?? this.loading.get(id) ?? null));
  }

  private startLoading(ids: readonly string[]): void {
    const generation = this.generation;
    const batch = this.read(ids);
    ids.forEach((id, k) => {
      const one: Promise<T | null> = batch
        .then((rows) => {
          if (generation === this.generation) {
            this.rows.set(id, { row: rows[k]! });
          }
          return rows[k]!;
        })
        .finally(() => {
          if (this.loading.get(id) === one) {
            this.loading.delete(id);
          }
        });
      this.loading.set(id, one);
    });
  }

  /** After a committed write: forgets the row here and on every other replica. */
  async changed(id: string): Promise<void> {
    this.forget(id);
    this.options.onChange?.(id);
    await this.options.pubSub.publish(this.options.topic, { id, origin: this.origin });
  }

  /** Forgets one row on this replica only (what a change message does). */
  private forget(id: string): void {
    this.generation += 1;
    this.rows.delete(id);
    this.loading.delete(id);
  }

  private clear(): void {
    this.generation += 1;
    this.rows.clear();
    this.loading.clear();
  }

  private async read(ids: readonly string[]): Promise<(T | null)[]> {
    const rows = await this.options.load(ids);
    const byId = new Map(rows.map((row) => [this.options.idOf(row), row]));
    return ids.map((id) => byId.get(id) ?? null);
  }
}
