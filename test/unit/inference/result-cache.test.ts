import { describe, expect, it } from 'vitest';
import { createMemoryStore } from '../../../src/cache/kv-store';
import { ResultCache } from '../../../src/inference/result-cache';

describe('ResultCache keys', () => {
  const cache = new ResultCache(createMemoryStore());
  const model = { id: 'm1', version: '1' };
  const tensor = (values: number[]) => ({
    x: { type: 'float32', dims: [1, values.length], data: Float32Array.from(values) },
  });

  it('are equal for equal inputs whatever the order of their keys', () => {
    expect(cache.key(model, { text: 'hi', lang: 'en' }, { seed: 1, top_k: 5 })).toBe(
      cache.key(model, { lang: 'en', text: 'hi' }, { top_k: 5, seed: 1 }),
    );
    expect(cache.key(model, tensor([1, 2, 3]), {})).toBe(cache.key(model, tensor([1, 2, 3]), {}));
  });

  it('differ when the model, a tensor value, its type, the input or a parameter differs', () => {
    const base = cache.key(model, tensor([1, 2, 3]), { seed: 1 });
    expect(cache.key({ ...model, version: '2' }, tensor([1, 2, 3]), { seed: 1 })).not.toBe(base);
    expect(cache.key(model, tensor([1, 2, 4]), { seed: 1 })).not.toBe(base);
    expect(cache.key(model, tensor([1, 2, 3]), { seed: 2 })).not.toBe(base);
    const asFloat64 = {
      x: { type: 'float32', dims: [1, 3], data: Float64Array.from([1, 2, 3]) },
    };
    expect(cache.key(model, asFloat64, { seed: 1 })).not.toBe(base);
    expect(cache.key(model, { text: 'a' }, {})).not.toBe(cache.key(model, { text: 'b' }, {}));
  });

  it('store and return a result', async () => {
    const key = cache.key(model, { text: 'stored' }, {});
    expect(await cache.get(key)).toBeNull();
    await cache.set(key, { output: { label: 'ok' }, executionProvider: 'cpu' }, 60);
    expect(await cache.get(key)).toEqual({ output: { label: 'ok' }, executionProvider: 'cpu' });
  });
});
