import { type KeyValueStore } from '../cache/kv-store';
import { AppError, ErrorCode } from '../graphql/errors';

/**
 * Requests per model per minute, counted in fixed one-minute windows shared by every
 * replica (an atomic INCR + EXPIRE in Redis; in-process without Redis).
 */
export class ModelThrottle {
  constructor(private readonly kv: KeyValueStore) {}

  /** Counts one request; RATE_LIMITED with retryAfterSeconds when the window is full. */
  async take(modelId: string, limitPerMinute: number, now = Date.now()): Promise<void> {
    const window = Math.floor(now / 60_000);
    const count = await this.kv.increment(`rl:${modelId}:${window}`, 61);
    if (count > limitPerMinute) {
      const retryAfterSeconds = Math.max(1, Math.ceil(((window + 1) * 60_000 - now) / 1000));
      throw new AppError(
        ErrorCode.RATE_LIMITED,
        `Model rate limit of ${limitPerMinute} requests per minute reached`,
        { retryAfterSeconds, limit: limitPerMinute },
      );
    }
  }
}
