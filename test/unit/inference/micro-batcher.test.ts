import { describe, expect, it } from 'vitest';
import { MicroBatcher, QueueFullError } from '../../../src/inference/micro-batcher';

const options = { maxBatchSize: 32, maxQueueDelayMs: 5, concurrency: 1, maxQueued: 100 };

describe('MicroBatcher', () => {
  it('runs requests that arrive together as one batch and answers each with its own result', async () => {
    const batches: number[][] = [];
    const batcher = new MicroBatcher<number, number>(options, async (items) => {
      batches.push(items);
      return items.map((n) => n * 10);
    });
    const answers = await Promise.all([1, 2, 3].map((n) => batcher.submit(n)));
    expect(batches).toEqual([[1, 2, 3]]);
    expect(answers).toEqual([
      { value: 10, batchSize: 3 },
      { value: 20, batchSize: 3 },
      { value: 30, batchSize: 3 },
    ]);
  });

  it('delivers a large batch a few answers per turn, with other work served in between', async () => {
    let answered = 0;
    let answeredWhenOtherWorkRan = -1;
    const batcher = new MicroBatcher<number, number>(options, async (items) => {
      setImmediate(() => (answeredWhenOtherWorkRan = answered)); // other work, due at once
      return items;
    });
    const all = Array.from({ length: 32 }, (_, n) =>
      batcher.submit(n).then((a) => {
        answered += 1;
        return a.value;
      }),
    );
    expect(await Promise.all(all)).toEqual(Array.from({ length: 32 }, (_, n) => n));
    expect(answeredWhenOtherWorkRan).toBeGreaterThan(0);
    expect(answeredWhenOtherWorkRan).toBeLessThan(32);
  });

  it('fails a request at once when the queue is full, and every item of a failed run', async () => {
    const failing = new MicroBatcher<number, number>({ ...options, maxQueued: 2 }, async () => {
      throw new Error('model crashed');
    });
    const queued = [failing.submit(1), failing.submit(2)];
    await expect(failing.submit(3)).rejects.toBeInstanceOf(QueueFullError);
    for (const p of queued) {
      await expect(p).rejects.toThrow('model crashed');
    }
  });

  it('sends what queued during a run as soon as the runner is free, without the delay', async () => {
    const batches: number[][] = [];
    let release!: () => void;
    const first = new Promise<void>((resolve) => (release = resolve));
    const batcher = new MicroBatcher<number, number>(
      // A full batch goes at once; a partial one would wait a minute for company.
      { ...options, maxBatchSize: 2, maxQueueDelayMs: 60_000 },
      async (items) => {
        batches.push(items);
        if (batches.length === 1) {
          await first;
        }
        return items;
      },
    );
    const full = [batcher.submit(1), batcher.submit(2)];
    const late = batcher.submit(3);
    release();
    await Promise.all([...full, late]);
    expect(batches).toEqual([[1, 2], [3]]);
  });
});
