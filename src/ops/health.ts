import { type DataSource } from 'typeorm';
import { type KeyValueStore } from '../cache/kv-store';

export interface ReadinessReport {
  readonly ready: boolean;
  readonly checks: Readonly<Record<string, 'ok' | 'failing' | 'draining'>>;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('timeout')), ms);
    promise.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

/**
 * Readiness: the database answers, and Redis when configured. Each probe is bounded so a
 * hung dependency reads as "failing" rather than hanging the kubelet's probe.
 */
export function createReadiness(deps: {
  dataSource: DataSource;
  kv: KeyValueStore;
  isDraining: () => boolean;
  timeoutMs?: number;
}) {
  const timeoutMs = deps.timeoutMs ?? 2_000; // 2 s
  return async function readiness(): Promise<ReadinessReport> {
    const check = (p: Promise<unknown>) =>
      withTimeout(p, timeoutMs).then(
        () => 'ok' as const,
        () => 'failing' as const,
      );
    const [database, redis] = await Promise.all([
      check(deps.dataSource.query('SELECT 1')),
      deps.kv.mode === 'redis' ? check(deps.kv.ping()) : Promise.resolve(undefined),
    ]);
    const checks: Record<string, 'ok' | 'failing' | 'draining'> = { database };
    if (redis) {
      checks.redis = redis;
    }
    if (deps.isDraining()) {
      checks.server = 'draining';
    }
    return { ready: Object.values(checks).every((c) => c === 'ok'), checks };
  };
}
