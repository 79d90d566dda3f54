import { type Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';

/**
 * Cache entries and counters shared by replicas: Redis when REDIS_URL is set, an in-process
 * LRU otherwise. Values are strings; callers serialize.
 */
export interface KeyValueStore {
  readonly mode: 'redis' | 'memory';
  get(key: string): Promise<string | null>;
  set(key: string, value: string, ttlSeconds: number): Promise<void>;
  del(...keys: string[]): Promise<void>;
  /** Adds 1 and returns the new value; the key expires `ttlSeconds` after its first increment. */
  increment(key: string, ttlSeconds: number): Promise<number>;
  /**
   * Stores `value` unless the key already holds a value with a stamp at least as high, so a
   * slow reader cannot put back an older version after a newer write (or a deletion).
   */
  setIfNewer(key: string, stamp: number, value: string, ttlSeconds: number): Promise<boolean>;
  /** The value stored by setIfNewer, or null. */
  getStamped(key: string): Promise<{ stamp: number; value: string } | null>;
  /** Seconds until the key expires; -1 when it has no expiry or does not exist. */
  ttl(key: string): Promise<number>;
  ping(): Promise<void>;
}

// INCR and the first EXPIRE in one atomic step, so a crash between them cannot leave a
// counter that never expires.
const INCREMENT = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n`;

const SET_IF_NEWER = `
local current = redis.call('GET', KEYS[1])
if current then
  local stamp = tonumber(string.match(current, '^(%d+)|'))
  if stamp and stamp >= tonumber(ARGV[1]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. ARGV[2], 'EX', ARGV[3])
return 1`;

function parseStamped(raw: string | null | undefined): { stamp: number; value: string } | null {
  if (!raw) {
    return null;
  }
  const bar = raw.indexOf('|');
  const stamp = Number(raw.slice(0, bar));
  return bar > 0 && Number.isFinite(stamp) ? { stamp, value: raw.slice(bar + 1) } : null;
}

const ttlOf = (seconds: number) => Math.max(1, Math.ceil(seconds));

/** The scripts above as commands: ioredis sends EVALSHA, and the script text only once. */
interface ScriptedRedis extends Redis {
  csIncrement(key: string, ttlSeconds: number): Promise<number>;
  csSetIfNewer(key: string, stamp: number, value: string, ttlSeconds: number): Promise<number>;
}

export function createRedisStore(client: Redis, prefix = 'cs:'): KeyValueStore {
  client.defineCommand('csIncrement', { numberOfKeys: 1, lua: INCREMENT });
  client.defineCommand('csSetIfNewer', { numberOfKeys: 1, lua: SET_IF_NEWER });
  const redis = client as ScriptedRedis;
  return {
    mode: 'redis',
    get: (key) => redis.get(prefix + key),
    async set(key, value, ttlSeconds) {
      await redis.set(prefix + key, value, 'EX', ttlOf(ttlSeconds));
    },
    async del(...keys) {
      if (keys.length) {
        await redis.del(...keys.map((k) => prefix + k));
      }
    },
    async increment(key, ttlSeconds) {
      return Number(await redis.csIncrement(prefix + key, ttlOf(ttlSeconds)));
    },
    async setIfNewer(key, stamp, value, ttlSeconds) {
      return (await redis.csSetIfNewer(prefix + key, stamp, value, ttlOf(ttlSeconds))) === 1;
    },
    async getStamped(key) {
      return parseStamped(await redis.get(prefix + key));
    },
    async ttl(key) {
      const seconds = await redis.ttl(prefix + key);
      return seconds < 0 ? -1 : seconds;
    },
    async ping() {
      await redis.ping();
    },
  };
}

export function createMemoryStore(maxEntries = 50_000): KeyValueStore {
  const cache = new LRUCache<string, string>({ max: maxEntries, ttlAutopurge: false });
  return {
    mode: 'memory',
    get: async (key) => cache.get(key) ?? null,
    async set(key, value, ttlSeconds) {
      cache.set(key, value, { ttl: ttlSeconds * 1000 });
    },
    async del(...keys) {
      for (const key of keys) {
        cache.delete(key);
      }
    },
    async increment(key, ttlSeconds) {
      const current = cache.get(key);
      const next = (current ? Number(current) : 0) + 1;
      // noUpdateTTL keeps the window fixed from the first increment, as the Redis script does.
      cache.set(key, String(next), current ? { noUpdateTTL: true } : { ttl: ttlSeconds * 1000 });
      return next;
    },
    async setIfNewer(key, stamp, value, ttlSeconds) {
      const current = parseStamped(cache.get(key));
      if (current && current.stamp >= stamp) {
        return false;
      }
      cache.set(key, `${stamp}|${value}`, { ttl: ttlOf(ttlSeconds) * 1000 });
      return true;
    },
    async getStamped(key) {
      return parseStamped(cache.get(key));
    },
    async ttl(key) {
      const ms = cache.getRemainingTTL(key);
      return ms > 0 && Number.isFinite(ms) ? Math.ceil(ms / 1000) : -1;
    },
    async ping() {},
  };
}
