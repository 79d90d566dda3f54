import { type KeyValueStore } from '../cache/kv-store';
import { AppError, ErrorCode } from '../graphql/errors';

/**
 * Login attempts per minute, per username and per client address, shared by replicas
 * through Redis: slows password guessing against one account and from one machine.
 */
export class LoginThrottle {
  constructor(
    private readonly kv: KeyValueStore,
    private readonly perUsername: number,
    private readonly perAddress: number,
  ) {}

  async take(username: string, address: string | undefined, now = Date.now()): Promise<void> {
    const window = Math.floor(now / 60_000);
    const checks: [string, number][] = [
      [`login:u:${username.toLowerCase()}:${window}`, this.perUsername],
    ];
    if (address) {
      checks.push([`login:ip:${address}:${window}`, this.perAddress]);
    }
    for (const [key, limit] of checks) {
      if ((await this.kv.increment(key, 61)) > limit) {
        throw new AppError(ErrorCode.RATE_LIMITED, 'Too many login attempts; try again later', {
          retryAfterSeconds: Math.max(1, Math.ceil(((window + 1) * 60_000 - now) / 1000)),
        });
      }
    }
  }
}
