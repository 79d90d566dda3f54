import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../../src/config/env';

describe('loadConfig', () => {
  it('starts with no variables at all: embedded database, in-process Redis stand-ins', () => {
    const config = loadConfig({});
    expect(config.port).toBe(4000);
    expect(config.database.url).toBeUndefined();
    expect(config.redisUrl).toBeUndefined();
    expect(config.graphql.introspection).toBe(true);
    expect(config.graphql.graphiql).toBe(true);
  });

  it.each([
    [{ PORT: 'eighty' }, 'PORT'],
    [{ PORT: '70000' }, 'PORT'],
    [{ DATABASE_URL: 'not a url', JWT_SECRET: 'x'.repeat(32) }, 'DATABASE_URL'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
    [{ DATABASE_POOL_SIZE: '0' }, 'DATABASE_POOL_SIZE'],
    [{ ADMIN_PASSWORD: 'short' }, 'ADMIN_PASSWORD'],
    [{ METRICS: 'maybe' }, 'METRICS'],
  ])('fails fast on %o, naming %s', (env, name) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(name);
  });

  it('requires JWT_SECRET when replicas share a database', () => {
    expect(() => loadConfig({ DATABASE_URL: 'postgres://db/app' })).toThrow('JWT_SECRET');
  });

  it('refuses a JWT_SECRET shorter than 32 bytes in production', () => {
    expect(() => loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'short' })).toThrow('JWT_SECRET');
    expect(() => loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(32) })).not.toThrow();
  });

  it('turns introspection and GraphiQL off in production unless asked', () => {
    const prod = loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(32) });
    expect(prod.graphql.introspection).toBe(false);
    expect(prod.graphql.graphiql).toBe(false);
    const asked = loadConfig({
      NODE_ENV: 'production',
      JWT_SECRET: 'x'.repeat(32),
      GRAPHQL_INTROSPECTION: 'true',
    });
    expect(asked.graphql.introspection).toBe(true);
  });
});
