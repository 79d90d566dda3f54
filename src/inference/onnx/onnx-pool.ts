import { realpath, stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { type Logger } from '../../ops/logger';
import { TENSOR_ARRAYS, type TensorData, type TensorSpec, type TensorType } from '../types';
import { WORKER_SOURCE } from './worker-source';

export type InferenceDevice = 'auto' | 'cuda' | 'cpu';

export interface LoadedModelInfo {
  readonly inputs: TensorSpec[];
  readonly outputs: TensorSpec[];
  /** The provider that really runs the model ("cuda" or "cpu"). */
  readonly executionProvider: string;
}

/** Runs ONNX models; the onnxruntime adapter below is the one implementation in-process. */
export interface ModelRuntime {
  /**
   * Makes the model's session ready (in every worker); later calls return the same info.
   * Models loaded from the same unchanged file share one session.
   */
  load(key: string, path: string): Promise<LoadedModelInfo>;
  run(
    key: string,
    feeds: Readonly<Record<string, TensorData>>,
  ): Promise<Record<string, TensorData>>;
  /** The model no longer needs its session (released with the last model using it). */
  release(key: string): Promise<void>;
  /** How many batches can run at once (one per worker). */
  readonly parallelism: number;
  /** Sessions loaded now (one per model file in use). */
  readonly sessions: number;
  close(): Promise<void>;
}

interface WireTensor {
  type: TensorType;
  dims: number[];
  buffer: ArrayBufferLike;
  byteOffset: number;
  length: number;
}

const WORKER_CLOSE_TIMEOUT_MS = 5_000; // 5 s

class PooledWorker {
  readonly worker: Worker;
  busy = 0;
  private nextId = 0;
  private readonly pending = new Map<
    number,
    { resolve: (v: unknown) => void; reject: (e: Error) => void }
  >();

  constructor(ortPath: string, intraOpThreads: number, onExit: (error: Error) => void) {
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { ortPath, intraOpThreads },
    });
    this.worker.on(
      'message',
      (message: { id: number; ok: boolean; result?: unknown; error?: string }) => {
        const call = this.pending.get(message.id);
        this.pending.delete(message.id);
        if (message.ok) {
          call?.resolve(message.result);
        } else {
          call?.reject(new Error(message.error));
        }
      },
    );
    const fail = (error: Error) => {
      for (const call of this.pending.values()) {
        call.reject(error);
      }
      this.pending.clear();
      onExit(error);
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => {
      if (code !== 0) {
        fail(new Error(`inference worker exited with code ${code}`));
      }
    });
  }

  /** Releases the worker's sessions and lets it exit; terminates it if it has not after a while. */
  async close(): Promise<void> {
    const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, WORKER_CLOSE_TIMEOUT_MS);
    });
    await Promise.race([this.call({ op: 'close' }).then(() => exited), deadline]).catch(
      () => undefined,
    );
    clearTimeout(timer);
    await this.worker.terminate();
  }

  call<T>(message: Record<string, unknown>, transfer: ArrayBuffer[] = []): Promise<T> {
    const id = this.nextId++;
    this.busy += 1;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ ...message, id }, transfer);
    }).finally(() => {
      this.busy -= 1;
    });
  }
}

/** The same file, unchanged: its real path, size and modification time. */
async function fileIdentity(path: string): Promise<string> {
  const real = await realpath(path);
  const { size, mtimeMs } = await stat(real);
  return `${real}:${size}:${mtimeMs}`;
}

/**
 * Intra-op threads per session when none are configured: every core but one, shared by the
 * workers. The core left over runs the event loop; onnxruntime's own default (all cores)
 * makes the model compete with request handling, which then stalls behind it.
 */
export function defaultIntraOpThreads(workers: number, cores = availableParallelism()): number {
  return Math.max(1, Math.floor((cores - 1) / workers));
}

/**
 * onnxruntime-node sessions in a pool of worker threads, one pool per process. Every model
 * is loaded in every worker; a batch goes to the least busy one.
 */
export function createOnnxRuntime(options: {
  workers: number;
  device: InferenceDevice;
  intraOpThreads: number;
  logger: Logger;
}): ModelRuntime {
  const ortPath = require.resolve('onnxruntime-node');
  const intraOpThreads = options.intraOpThreads || defaultIntraOpThreads(options.workers);
  let closing = false;
  const workers = Array.from(
    { length: options.workers },
    () =>
      new PooledWorker(ortPath, intraOpThreads, (error) => {
        if (!closing) {
          options.logger.error({ err: error }, 'inference worker failed');
        }
      }),
  );
  /**
   * One session per model file, shared by every model registered from it (versions that
   * differ only in batching, caching or limits): the weights are in memory once. `models`
   * maps a model's key to the session it uses; a session is released with its last model.
   */
  const sessions = new Map<string, { info: Promise<LoadedModelInfo>; users: Set<string> }>();
  const models = new Map<string, string>();
  let fallbackLogged = false;

  const loadSession = (sessionKey: string, path: string) =>
    Promise.all(
      workers.map((w) =>
        w.call<LoadedModelInfo & { provider: string; fallback?: string }>({
          op: 'load',
          key: sessionKey,
          path,
          device: options.device,
        }),
      ),
    ).then(([first]) => {
      if (first!.fallback && !fallbackLogged) {
        fallbackLogged = true;
        options.logger.info(
          { reason: first!.fallback.split('\n')[0] },
          'CUDA execution provider unavailable; running models on CPU',
        );
      }
      return {
        inputs: first!.inputs,
        outputs: first!.outputs,
        executionProvider: first!.provider,
      };
    });

  const releaseModel = async (key: string) => {
    const sessionKey = models.get(key);
    models.delete(key);
    const session = sessionKey === undefined ? undefined : sessions.get(sessionKey);
    if (!session || !session.users.delete(key) || session.users.size > 0) {
      return;
    }
    sessions.delete(sessionKey!);
    await Promise.all(workers.map((w) => w.call({ op: 'release', key: sessionKey })));
  };

  return {
    parallelism: workers.length,

    get sessions() {
      return sessions.size;
    },

    async load(key, path) {
      const known = models.get(key);
      if (known !== undefined) {
        return sessions.get(known)!.info;
      }
      const sessionKey = await fileIdentity(path);
      let session = sessions.get(sessionKey);
      if (!session) {
        const info = loadSession(sessionKey, path);
        session = { info, users: new Set() };
        sessions.set(sessionKey, session);
        info.catch(() => {
          if (sessions.get(sessionKey)?.info === info) {
            sessions.delete(sessionKey);
            for (const user of session!.users) {
              models.delete(user);
            }
          }
        });
      }
      session.users.add(key);
      models.set(key, sessionKey);
      return session.info;
    },

    async run(key, feeds) {
      const worker = workers.reduce((a, b) => (b.busy < a.busy ? b : a));
      const wire: Record<string, WireTensor> = {};
      for (const [name, t] of Object.entries(feeds)) {
        wire[name] = {
          type: t.type,
          dims: [...t.dims],
          buffer: t.data.buffer,
          byteOffset: t.data.byteOffset,
          length: t.data.length,
        };
      }
      const sessionKey = models.get(key);
      if (sessionKey === undefined) {
        throw new Error(`model not loaded: ${key}`);
      }
      const result = await worker.call<{ outputs: Record<string, WireTensor> }>({
        op: 'run',
        key: sessionKey,
        feeds: wire,
      });
      const outputs: Record<string, TensorData> = {};
      for (const [name, t] of Object.entries(result.outputs)) {
        outputs[name] = {
          type: t.type,
          dims: t.dims,
          data: new TENSOR_ARRAYS[t.type](t.buffer, t.byteOffset, t.length),
        };
      }
      return outputs;
    },

    release: releaseModel,

    async close() {
      closing = true;
      await Promise.all(workers.map((w) => w.close()));
    },
  };
}
