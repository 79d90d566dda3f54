import { createHash } from 'node:crypto';
import { type KeyValueStore } from '../cache/kv-store';

/** Stable JSON: object keys sorted, so equal inputs hash equally whatever their key order. */
function canonical(value: unknown): string {
  if (ArrayBuffer.isView(value)) {
    const bytes = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    return `"${value.constructor.name}:${bytes.toString('base64')}"`;
  }
  if (Array.isArray(value)) {
    return `[${value.map(canonical).join(',')}]`;
  }
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
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
    const digest = createHash('sha256')
      .update(canonical({ model: `${model.id}@${model.version}`, input, parameters }))
      .digest('base64url');
    return `infer:${digest}`;
  }

  async get(key: string): Promise<CachedResult | null> {
    const raw = await this.kv.get(key);
    return raw ? (JSON.parse(raw) as CachedResult) : null;
  }

  async set(key: string, result: CachedResult, ttlSeconds: number): Promise<void> {
    await this.kv.set(key, JSON.stringify(result), ttlSeconds);
  }
}
