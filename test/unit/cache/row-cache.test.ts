import { describe, expect, it } from 'vitest';
import { ReplicaRowCache } from '../../../src/cache/row-cache';
import { createInProcessPubSub, type PubSub } from '../../../src/realtime/pubsub';

interface Row {
  readonly id: string;
  readonly role: string;
}

/** A table in memory that counts the queries made of it. */
function table(rows: Record<string, string>) {
  const data = new Map(Object.entries(rows));
  const queries: string[][] = [];
  let gate: Promise<void> | undefined;
  return {
    data,
    queries,
    /** Holds the next reads until `release` is called (a slow database). */
    hold() {
      let release!: () => void;
      gate = new Promise<void>((resolve) => (release = resolve));
      return () => {
        gate = undefined;
        release();
      };
    },
    async load(ids: readonly string[]): Promise<Row[]> {
      queries.push([...ids]);
      const snapshot = ids.flatMap((id) =>
        data.has(id) ? [{ id, role: data.get(id)! } as Row] : [],
      );
      await gate;
      return snapshot;
    },
  };
}

function cacheOver(db: ReturnType<typeof table>, pubSub: PubSub, ttlMs = 60_000) {
  const lookups: boolean[] = [];
  const changes: string[] = [];
  const cache = new ReplicaRowCache<Row>({
    topic: 'changed:test-rows',
    pubSub,
    load: (ids) => db.load(ids),
    idOf: (row) => row.id,
    ttlMs,
    onLookup: (hit) => lookups.push(hit),
    onChange: (id) => changes.push(id),
  });
  return { cache, lookups, changes };
}

describe('ReplicaRowCache', () => {
  it('reads each row once and serves repeats from memory, absent rows included', async () => {
    const db = table({ a: 'USER', b: 'ADMIN' });
    const { cache, lookups } = cacheOver(db, createInProcessPubSub());
    await cache.start();

    expect(await cache.getMany(['a', 'b', 'nobody'])).toEqual([
      { id: 'a', role: 'USER' },
      { id: 'b', role: 'ADMIN' },
      null,
    ]);
    expect(await cache.get('a')).toEqual({ id: 'a', role: 'USER' });
    expect(await cache.get('nobody')).toBeNull();
    expect(db.queries).toEqual([['a', 'b', 'nobody']]);
    expect(lookups).toEqual([false, false, false, true, true]);
  });

  it('shares one read among concurrent lookups of the same row', async () => {
    const db = table({ a: 'USER' });
    const { cache } = cacheOver(db, createInProcessPubSub());
    const release = db.hold();
    const both = Promise.all([cache.get('a'), cache.get('a')]);
    release();
    expect(await both).toEqual([
      { id: 'a', role: 'USER' },
      { id: 'a', role: 'USER' },
    ]);
    expect(db.queries).toEqual([['a']]);
  });

  it('forgets a changed row here and on every other replica', async () => {
    const pubSub = createInProcessPubSub();
    const db = table({ a: 'USER' });
    const here = cacheOver(db, pubSub);
    const there = cacheOver(db, pubSub);
    await here.cache.start();
    await there.cache.start();
    await here.cache.get('a');
    await there.cache.get('a');

    db.data.set('a', 'ADMIN');
    await here.cache.changed('a');

    expect(await here.cache.get('a')).toEqual({ id: 'a', role: 'ADMIN' });
    expect(await there.cache.get('a')).toEqual({ id: 'a', role: 'ADMIN' });
    expect(there.changes).toEqual(['a']);
    expect(db.queries).toHaveLength(4);
  });

  it('does not keep a row read before a change that arrived while the read was running', async () => {
    const db = table({ a: 'USER' });
    const { cache } = cacheOver(db, createInProcessPubSub());
    const release = db.hold();
    const slow = cache.get('a'); // reads the old row, then waits
    db.data.set('a', 'DISABLED');
    await cache.changed('a');
    release();

    expect(await slow).toEqual({ id: 'a', role: 'USER' }); // it began before the change
    expect(await cache.get('a')).toEqual({ id: 'a', role: 'DISABLED' });
    expect(db.queries).toEqual([['a'], ['a']]);
  });

  it('does not let a lookup after a change join a read that began before it', async () => {
    const db = table({ a: 'USER' });
    const { cache } = cacheOver(db, createInProcessPubSub());
    const release = db.hold();
    const before = cache.get('a');
    db.data.set('a', 'DISABLED');
    await cache.changed('a');
    const after = cache.get('a');
    release();

    expect(await before).toEqual({ id: 'a', role: 'USER' });
    expect(await after).toEqual({ id: 'a', role: 'DISABLED' });
  });

  it('reads the database while pub/sub may be losing messages, and keeps copies again after', async () => {
    const listeners: ((complete: boolean) => void)[] = [];
    const pubSub = {
      ...createInProcessPubSub(),
      delivering: true,
      onDelivery: (listener: (complete: boolean) => void) => listeners.push(listener),
    };
    const db = table({ a: 'USER' });
    const { cache } = cacheOver(db, pubSub);
    await cache.start();
    await cache.get('a');
    await cache.get('a');
    expect(db.queries).toHaveLength(1);

    listeners.forEach((listener) => listener(false)); // the subscriber connection is lost
    await cache.get('a');
    await cache.get('a');
    expect(db.queries).toHaveLength(3);

    listeners.forEach((listener) => listener(true)); // subscribed again
    await cache.get('a');
    await cache.get('a');
    expect(db.queries).toHaveLength(4);
  });

  it('reads the database every time when its lifetime is 0', async () => {
    const db = table({ a: 'USER' });
    const { cache } = cacheOver(db, createInProcessPubSub(), 0);
    await cache.get('a');
    await cache.get('a');
    expect(db.queries).toEqual([['a'], ['a']]);
  });

  it('reads a row again once its lifetime has passed', async () => {
    const db = table({ a: 'USER' });
    const { cache } = cacheOver(db, createInProcessPubSub(), 20);
    await cache.get('a');
    await new Promise((resolve) => setTimeout(resolve, 40));
    await cache.get('a');
    expect(db.queries).toEqual([['a'], ['a']]);
  });
});
