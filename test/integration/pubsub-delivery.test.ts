import { Redis } from 'ioredis';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createRedisPubSub } from '../../src/realtime/pubsub';

describe('Redis pub/sub delivery', () => {
  const name = `delivery-test-${process.pid}`;
  const publisher = new Redis(inject('redisUrl'));
  const subscriber = new Redis(inject('redisUrl'), { connectionName: name });
  const admin = new Redis(inject('redisUrl'));
  const pubSub = createRedisPubSub(publisher, subscriber);
  afterAll(async () => {
    await pubSub.close();
    admin.disconnect();
  });

  it('says when messages may be lost, and when the channels are subscribed again', async () => {
    const seen: unknown[] = [];
    await pubSub.listen('delivery-test', (message) => seen.push(message));
    const changes: boolean[] = [];
    pubSub.onDelivery((complete) => changes.push(complete));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(pubSub.delivering).toBe(true);

    const clients = String(await admin.client('LIST')).split('\n');
    const id = /id=(\d+)/.exec(clients.find((line) => line.includes(`name=${name}`))!)![1]!;
    await admin.client('KILL', 'ID', id);
    for (let i = 0; i < 200 && changes.length < 2; i++) {
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    expect(changes).toEqual([false, true]);
    expect(pubSub.delivering).toBe(true);

    // Subscribed again by then: a message published now arrives.
    await pubSub.publish('delivery-test', { n: 1 });
    for (let i = 0; i < 100 && seen.length === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(seen).toEqual([{ n: 1 }]);
  });
});
