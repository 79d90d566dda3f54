import { Redis, type RedisOptions } from 'ioredis';
import { type Logger } from '../ops/logger';

/**
 * ioredis clients with bounded waits: a command fails after one retry instead of queueing
 * forever while Redis is down (readiness reports it; requests get SERVICE_UNAVAILABLE), and
 * reconnects back off up to 2 s.
 */
export function createRedis(
  url: string,
  name: string,
  logger: Logger,
  extra: RedisOptions = {},
): Redis {
  const client = new Redis(url, {
    connectionName: `context-server:${name}`,
    maxRetriesPerRequest: 1,
    connectTimeout: 5_000, // 5 s
    retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
    ...extra,
  });
  let healthy = true;
  client.on('error', (error: Error) => {
    if (healthy) {
      healthy = false;
      logger.warn({ client: name, err: { message: error.message } }, 'redis connection error');
    }
  });
  client.on('ready', () => {
    if (!healthy) {
      healthy = true;
      logger.info({ client: name }, 'redis connection restored');
    }
  });
  return client;
}
