import { type IncomingMessage, type ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import { admitPerTurn } from '../../../src/server/admission';

const request = (n: number) => ({ n }) as unknown as IncomingMessage;
const response = {} as ServerResponse;

describe('admitPerTurn', () => {
  it('starts a burst a few requests per turn, in arrival order, with other work served between', async () => {
    const started: number[] = [];
    const arrivals: (number | undefined)[] = [];
    const handledAt: number[] = [];
    const handle = admitPerTurn((req) => {
      started.push((req as unknown as { n: number }).n);
      arrivals.push(req.receivedAt);
      handledAt.push(performance.now());
    }, 2);
    let startedWhenOtherWorkRan = -1;
    for (let n = 1; n <= 8; n++) {
      handle(request(n), response); // eight requests read in one poll phase
    }
    setImmediate(() => (startedWhenOtherWorkRan = started.length)); // other work, due at once
    expect(started).toEqual([1, 2]);

    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(started).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    // Each request knows when it arrived, so its latency includes the wait for its turn.
    expect(arrivals.every((at, i) => at !== undefined && at <= handledAt[i]!)).toBe(true);
    expect(arrivals[7]!).toBeLessThan(handledAt[7]!);
    expect(startedWhenOtherWorkRan).toBeGreaterThan(0);
    expect(startedWhenOtherWorkRan).toBeLessThan(8);
  });

  it('starts requests at once while a turn has room, and again after an idle spell', async () => {
    const started: number[] = [];
    const handle = admitPerTurn((req) => started.push((req as unknown as { n: number }).n), 3);
    handle(request(1), response);
    handle(request(2), response);
    expect(started).toEqual([1, 2]);
    await new Promise((resolve) => setTimeout(resolve, 5));
    handle(request(3), response);
    handle(request(4), response);
    handle(request(5), response);
    expect(started).toEqual([1, 2, 3, 4, 5]);
  });
});
