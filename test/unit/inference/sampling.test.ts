import { describe, expect, it } from 'vitest';
import { createRng, sampleToken } from '../../../src/inference/sampling';

const DRAWS = 5_000;

/** How often each id was drawn over `DRAWS` draws. */
function histogram(
  logits: number[],
  p: { temperature: number; top_k: number; top_p: number },
  seed = 7,
  exclude?: ReadonlySet<number>,
): Map<number, number> {
  const rng = createRng(seed);
  const counts = new Map<number, number>();
  for (let i = 0; i < DRAWS; i++) {
    const id = sampleToken(logits, p, rng, exclude);
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}

const drawnIds = (counts: Map<number, number>) => [...counts.keys()].sort((a, b) => a - b);

describe('createRng', () => {
  it('gives the same sequence for the same seed and another for another seed', () => {
    const sequence = (seed: number) => {
      const rng = createRng(seed);
      return Array.from({ length: 20 }, () => rng());
    };
    expect(sequence(42)).toEqual(sequence(42));
    expect(sequence(42)).not.toEqual(sequence(43));
  });

  it('draws numbers in [0, 1) spread evenly over the interval', () => {
    const rng = createRng(1);
    const buckets = new Array<number>(10).fill(0);
    let outside = 0;
    for (let i = 0; i < 100_000; i++) {
      const x = rng();
      if (x >= 0 && x < 1) {
        buckets[Math.floor(x * 10)]!++;
      } else {
        outside++;
      }
    }
    expect(outside).toBe(0);
    for (const count of buckets) {
      expect(count).toBeGreaterThan(9_500);
      expect(count).toBeLessThan(10_500);
    }
  });
});

describe('sampleToken', () => {
  const logits = [1, 3, 2, 0.5, 2.5, -1];
  const open = { temperature: 1, top_k: 1000, top_p: 1 };

  it('draws the same tokens for the same seed', () => {
    const tokens = (seed: number) => {
      const rng = createRng(seed);
      return Array.from({ length: 50 }, () => sampleToken(logits, open, rng));
    };
    expect(tokens(123)).toEqual(tokens(123));
    expect(tokens(123)).not.toEqual(tokens(124));
  });

  it('takes the highest logit at temperature 0, the lowest id on a tie', () => {
    const rng = createRng(1);
    expect(sampleToken(logits, { ...open, temperature: 0 }, rng)).toBe(1);
    expect(sampleToken([0, 5, 5, 1], { ...open, temperature: 0 }, rng)).toBe(1);
  });

  it('takes the highest logit whatever the temperature when top_k is 1', () => {
    expect(drawnIds(histogram(logits, { temperature: 2, top_k: 1, top_p: 1 }))).toEqual([1]);
  });

  it('accepts a Float32Array of logits', () => {
    const rng = createRng(1);
    expect(sampleToken(Float32Array.from(logits), { ...open, temperature: 0 }, rng)).toBe(1);
  });

  it('draws every token in proportion to softmax(logits / temperature) when nothing is cut', () => {
    const counts = histogram([0, Math.log(3)], open);
    // p = 0.25 and 0.75; 5 000 draws put the share within ±0.03 with overwhelming odds.
    expect((counts.get(1) ?? 0) / DRAWS).toBeGreaterThan(0.72);
    expect((counts.get(1) ?? 0) / DRAWS).toBeLessThan(0.78);
  });

  it('flattens the distribution at a high temperature and sharpens it at a low one', () => {
    const share = (temperature: number) =>
      (histogram([0, Math.log(3)], { ...open, temperature }).get(1) ?? 0) / DRAWS;
    expect(share(0.5)).toBeGreaterThan(0.85); // 9 / (1 + 9) = 0.9
    expect(share(4)).toBeLessThan(0.62); // √3 / (1 + √3) ≈ 0.58
  });

  it('never draws a token outside the top_k most likely', () => {
    expect(drawnIds(histogram(logits, { temperature: 5, top_k: 3, top_p: 1 }))).toEqual([1, 2, 4]);
  });

  it('never draws a token outside the nucleus: the fewest likeliest tokens holding top_p', () => {
    // Probabilities 0.5, 0.3, 0.15, 0.05: the nucleus for 0.75 is the first two, for 0.85 three.
    const probabilities = [0.05, 0.5, 0.15, 0.3];
    const logp = probabilities.map(Math.log);
    expect(drawnIds(histogram(logp, { temperature: 1, top_k: 1000, top_p: 0.75 }))).toEqual([1, 3]);
    expect(drawnIds(histogram(logp, { temperature: 1, top_k: 1000, top_p: 0.85 }))).toEqual([
      1, 2, 3,
    ]);
    expect(drawnIds(histogram(logp, { temperature: 1, top_k: 1000, top_p: 0.4 }))).toEqual([1]);
  });

  it('applies the nucleus within the top_k tokens', () => {
    // Top 2 of 0.5, 0.3, 0.2 renormalise to 0.625 and 0.375: top_p 0.6 keeps only the first.
    const logp = [0.2, 0.5, 0.3].map(Math.log);
    expect(drawnIds(histogram(logp, { temperature: 1, top_k: 2, top_p: 0.6 }))).toEqual([1]);
    expect(drawnIds(histogram(logp, { temperature: 1, top_k: 2, top_p: 0.7 }))).toEqual([1, 2]);
  });

  it('breaks ties at the top_k boundary in favour of the lower id', () => {
    expect(drawnIds(histogram([1, 1, 1, 1], { temperature: 1, top_k: 2, top_p: 1 }))).toEqual([
      0, 1,
    ]);
  });

  it('never draws an excluded id, even when it is the most likely', () => {
    const exclude = new Set([1, 4]);
    const counts = histogram(logits, open, 7, exclude);
    expect(drawnIds(counts)).toEqual([0, 2, 3, 5]);
    expect(sampleToken(logits, { ...open, temperature: 0 }, createRng(1), exclude)).toBe(2);
  });

  it('never draws a token whose logit is -Infinity or NaN', () => {
    const counts = histogram([0, -Infinity, Number.NaN, 0], open);
    expect(drawnIds(counts)).toEqual([0, 3]);
  });

  it('refuses when every token is excluded', () => {
    expect(() => sampleToken([1, 2], open, createRng(1), new Set([0, 1]))).toThrow(RangeError);
  });

  it('stays finite at a tiny temperature, where logits / temperature would overflow', () => {
    expect(drawnIds(histogram([1000, 999, 0], { temperature: 1e-6, top_k: 3, top_p: 1 }))).toEqual([
      0,
    ]);
  });

  it('keeps the top_k best of a large vocabulary, as a full sort would', () => {
    const rng = createRng(99);
    const vocabulary = Array.from({ length: 2_000 }, () => rng() * 10);
    const best = vocabulary
      .map((logit, id) => ({ logit, id }))
      .sort((a, b) => b.logit - a.logit)
      .slice(0, 5)
      .map(({ id }) => id)
      .sort((a, b) => a - b);
    expect(drawnIds(histogram(vocabulary, { temperature: 10, top_k: 5, top_p: 1 }))).toEqual(best);
  });
});
