import { describe, expect, it } from 'vitest';
import { defaultIntraOpThreads } from '../../../src/inference/onnx/onnx-pool';

describe('defaultIntraOpThreads', () => {
  it.each([
    [2, 1, 1],
    [16, 1, 15],
    [16, 4, 3],
    [4, 8, 1],
    [1, 1, 1],
  ])(
    'gives %i cores and %i workers %i threads each, one core left to the event loop',
    (cores, workers, threads) => {
      expect(defaultIntraOpThreads(workers, cores)).toBe(threads);
    },
  );
});
