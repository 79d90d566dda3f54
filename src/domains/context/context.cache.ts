import { type KeyValueStore } from '../../cache/kv-store';
import { type ContextEntity } from './context.entity';
import { deserializeContext, serializeContext, stampOf } from './context.row';

/** A deletion outranks every version, so a slow reader cannot bring a deleted row back. */
const TOMBSTONE = Number.MAX_SAFE_INTEGER;

/**
 * Context rows by id, in Redis (shared by every replica) or in-process. Entries hold the
 * stored form, ciphertexts included, so the cache never holds personal data in clear.
 */
export class ContextCache {
  constructor(
    private readonly kv: KeyValueStore,
    private readonly ttlSeconds: number,
    private readonly onLookup?: (hit: boolean) => void,
  ) {}

  private key(id: string) {
    return `ctx:${id}`;
  }

  /** The row, `null` when it is known to be deleted, `undefined` on a miss. */
  async get(id: string): Promise<ContextEntity | null | undefined> {
    // The cache is an accelerator: when Redis is down, reads go to the database.
    const entry = await this.kv.getStamped(this.key(id)).catch(() => null);
    this.onLookup?.(entry !== null);
    if (!entry) {
      return undefined;
    }
    if (entry.stamp === TOMBSTONE) {
      return null;
    }
    return deserializeContext(JSON.parse(entry.value));
  }

  async put(row: ContextEntity): Promise<void> {
    const untilExpiry = (row.expiresAt.getTime() - Date.now()) / 1000;
    if (untilExpiry <= 0) {
      return;
    }
    await this.kv
      .setIfNewer(
        this.key(row.id),
        stampOf(row),
        JSON.stringify(serializeContext(row)),
        Math.min(this.ttlSeconds, untilExpiry),
      )
      .catch(() => undefined);
  }

  async forget(ids: readonly string[]): Promise<void> {
    await Promise.all(
      ids.map((id) => this.kv.setIfNewer(this.key(id), TOMBSTONE, '', this.ttlSeconds)),
    );
  }
}
