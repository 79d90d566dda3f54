import { createHash, type Hash } from 'node:crypto';
import { type KeyValueStore } from '../cache/kv-store';

/**
 * Feeds a value to the hash as stable JSON: object keys sorted, so equal inputs hash equally
 * whatever their key order. Typed arrays go in as their type and raw bytes (a tensor of a
 * million floats is hashed, not turned into text first).
 */
function feed(hash: Hash, value: unknown): void {
  if (ArrayBuffer.isView(value)) {
    hash.update(`"${value.constructor.name}:${value.byteLength}:`);
    hash.update(new Uint8Array(value.buffer, value.byteOffset, value.byteLength));
    hash.update('"');
  } else if (Array.isArray(value)) {
    hash.update('[');
    value.forEach((item, i) => {
      if (i > 0) {
        hash.update(',');
      }
      feed(hash, item);
    });
    hash.update(']');
  } else if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    hash.update('{');
    entries.forEach(([k, v], i) => {
      hash.update(`${i > 0 ? ',' : ''}${JSON.stringify(k)}:`);
      feed(hash, v);
    });
    hash.update('}');
  } else {
    hash.update(JSON.stringify(value) ?? 'null');
  }
}

export interface CachedResult {
  readonly output: unknown;
  readonly executionProvider: string;
}

/**
 * Results of cacheable models, keyed by a hash of the model (id + version), the prepared
 * input and the effective parameters (seed included). Redis when configured, else in-process.
 */
export class ResultCache {
  constructor(private readonly kv: KeyValueStore) {}

  key(model: { id: string; version: string }, input: unknown, parameters: unknown): string {
    const hash = createHash('sha256');
    feed(hash, { model: `${model.id}@${model.version}`, input, parameters });
    return `infer:${hash.digest('base64url')}`;
  }

  async get(key: string): Promise<CachedResult | null> {
    const raw = await this.kv.get(key);
    return raw ? (JSON.parse(raw) as CachedResult) : null;
  }

  async set(key: string, result: CachedResult, ttlSeconds: number): Promise<void> {
    await this.kv.set(key, JSON.stringify(result), ttlSeconds);
  }
}
