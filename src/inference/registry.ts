import { randomUUID } from 'node:crypto';
import { existsSync, realpathSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { QueryFailedError } from 'typeorm';
import { badInput, conflict, notFound } from '../graphql/errors';
import { parseId } from '../graphql/ids';
import { type Logger } from '../ops/logger';
import { type ModelEntity } from '../domains/model/model.entity';
import { type ModelService, type NewModel } from '../domains/model/model.service';
import { ModelKind, type ModelTask, RemoteProtocol } from '../domains/model/model.types';
import { InferenceError, ModelUnavailableError, type ModelHandle } from './backend';
import { openOnnxModel } from './onnx/onnx-backend';
import { type ModelRuntime } from './onnx/onnx-pool';
import { type ShippedModel, type TensorSpec } from './types';

export interface BatchDefaults {
  readonly maxBatchSize: number;
  readonly maxQueueDelayMs: number;
  readonly maxQueued: number;
}

/** Opens REMOTE models; the OIP v2 and TF Serving clients implement it. */
export type RemoteOpener = (model: ModelEntity) => Promise<ModelHandle>;

export interface RegistryDeps {
  readonly models: ModelService;
  readonly runtime: ModelRuntime;
  readonly modelDir: string;
  readonly batching: BatchDefaults;
  readonly openRemote: RemoteOpener;
  readonly logger: Logger;
  readonly onBatch?: (model: ModelEntity, size: number) => void;
}

export interface RegisterInput {
  readonly name: string;
  readonly version: string;
  readonly kind: ModelKind;
  readonly task: ModelTask;
  readonly description?: string | null;
  readonly path?: string | null;
  readonly endpoint?: string | null;
  readonly remoteName?: string | null;
  readonly remoteProtocol?: RemoteProtocol | null;
  readonly defaultParameters?: Record<string, unknown> | null;
  readonly cacheable?: boolean | null;
  readonly cacheTtlSeconds?: number | null;
  readonly rateLimitPerMinute?: number | null;
  readonly maxBatchSize?: number | null;
  readonly maxQueueDelayMs?: number | null;
}

const UNIQUE_VIOLATION = '23505';
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const VERSION = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/;

/**
 * Registered models and their loaded handles. A model's session is created once, when it is
 * registered here (or on first use on another replica, or after a restart), and reused by
 * every request; deleting a model releases it.
 */
export class ModelRegistry {
  private readonly handles = new Map<string, Promise<ModelHandle>>();
  private readonly providers = new Map<string, string>();
  private readonly modelDir: string;

  constructor(private readonly deps: RegistryDeps) {
    this.modelDir = path.resolve(deps.modelDir);
  }

  /** The provider a loaded model really runs on; null before first load. */
  providerOf(modelId: string): string | null {
    return this.providers.get(modelId) ?? null;
  }

  /** Handles that finished loading, by model id (for queue-depth metrics). */
  readonly ready = new Map<string, { readonly model: ModelEntity; readonly handle: ModelHandle }>();

  handleFor(model: ModelEntity): Promise<ModelHandle> {
    let handle = this.handles.get(model.id);
    if (!handle) {
      handle = this.open(model).then((h) => {
        this.adopt(model, h);
        return h;
      });
      handle.catch(() => this.handles.delete(model.id));
      this.handles.set(model.id, handle);
    }
    return handle;
  }

  private async open(model: ModelEntity): Promise<ModelHandle> {
    if (model.kind === ModelKind.REMOTE) {
      return this.deps.openRemote(model);
    }
    const file = this.resolvePath(model.path ?? '');
    try {
      return await openOnnxModel(this.deps.runtime, {
        key: model.id,
        file,
        task: model.task,
        batching: {
          maxBatchSize: model.maxBatchSize ?? this.deps.batching.maxBatchSize,
          maxQueueDelayMs: model.maxQueueDelayMs ?? this.deps.batching.maxQueueDelayMs,
          maxQueued: this.deps.batching.maxQueued,
        },
        onBatch: (size) => this.deps.onBatch?.(model, size),
      });
    } catch (error) {
      if (error instanceof InferenceError) {
        throw error;
      }
      throw new ModelUnavailableError(`Model ${model.name}@${model.version} could not be loaded`);
    }
  }

  /**
   * A path under MODEL_DIR: relative, or absolute inside it; no `..` escape, and no symlink
   * leading out of it.
   */
  resolvePath(given: string): string {
    if (!given || given.includes('\0')) {
      throw badInput('path is required for ONNX models', { path: 'path' });
    }
    const full = path.resolve(this.modelDir, given);
    const inside = (p: string, root: string) => p === root || p.startsWith(root + path.sep);
    if (given.split(/[\\/]/).includes('..') || !inside(full, this.modelDir)) {
      throw badInput('path must name a file inside the model directory', { path: 'path' });
    }
    if (!existsSync(full)) {
      throw badInput(`path: no such file in the model directory: ${given}`, { path: 'path' });
    }
    if (!inside(realpathSync(full), realpathSync(this.modelDir))) {
      throw badInput('path must name a file inside the model directory', { path: 'path' });
    }
    if (!full.endsWith('.onnx')) {
      throw badInput('path must name an .onnx file', { path: 'path' });
    }
    return full;
  }

  async register(input: RegisterInput): Promise<ModelEntity> {
    const row = this.validate(input);
    // Load before inserting: a broken file is refused with nothing written, and the specs
    // recorded are the model's real ones. The loaded handle then serves the new model.
    let specs: { inputs: TensorSpec[]; outputs: TensorSpec[] } = { inputs: [], outputs: [] };
    const probe = { ...row, id: `probe:${row.name}@${row.version}:${randomUUID()}` } as ModelEntity;
    let handle: ModelHandle | undefined;
    try {
      handle = await this.open(probe);
      specs = { inputs: [...handle.inputs], outputs: [...handle.outputs] };
    } catch (error) {
      if (row.kind === ModelKind.ONNX) {
        const reason = error instanceof InferenceError ? error.message : 'not a valid ONNX model';
        throw badInput(`path: ${reason}`, { path: 'path' });
      }
      if (error instanceof ModelUnavailableError || error instanceof InferenceError) {
        this.deps.logger.warn({ model: row.name }, 'remote model not reachable at registration');
      } else {
        throw error;
      }
    }
    let inserted: ModelEntity;
    try {
      inserted = await this.deps.models.insert({ ...row, ...specs });
    } catch (error) {
      await handle?.close().catch(() => undefined);
      if (
        error instanceof QueryFailedError &&
        (error.driverError as { code?: string }).code === UNIQUE_VIOLATION
      ) {
        throw conflict(`Model ${row.name}@${row.version} is already registered`, {
          field: 'version',
        });
      }
      throw error;
    }
    if (handle && !this.handles.has(inserted.id)) {
      this.adopt(inserted, handle);
    } else {
      await handle?.close().catch(() => undefined);
    }
    return inserted;
  }

  private adopt(model: ModelEntity, handle: ModelHandle): void {
    this.handles.set(model.id, Promise.resolve(handle));
    this.providers.set(model.id, handle.executionProvider);
    this.ready.set(model.id, { model, handle });
  }

  private validate(input: RegisterInput): NewModel {
    if (!NAME.test(input.name)) {
      throw badInput('name: 1–128 letters, digits, . _ -', { path: 'name' });
    }
    if (!VERSION.test(input.version)) {
      throw badInput('version: 1–64 letters, digits, . _ + -', { path: 'version' });
    }
    const positive = (v: number | null | undefined, field: string, max: number) => {
      if (v !== null && v !== undefined && (!Number.isInteger(v) || v < 1 || v > max)) {
        throw badInput(`${field} must be between 1 and ${max}`, { path: field });
      }
    };
    positive(input.cacheTtlSeconds, 'cacheTtlSeconds', 30 * 24 * 3600);
    positive(input.rateLimitPerMinute, 'rateLimitPerMinute', 1_000_000);
    positive(input.maxBatchSize, 'maxBatchSize', 1024);
    if (input.maxQueueDelayMs !== null && input.maxQueueDelayMs !== undefined) {
      if (
        !Number.isInteger(input.maxQueueDelayMs) ||
        input.maxQueueDelayMs < 0 ||
        input.maxQueueDelayMs > 1000
      ) {
        throw badInput('maxQueueDelayMs must be between 0 and 1000', { path: 'maxQueueDelayMs' });
      }
    }
    const common = {
      name: input.name,
      version: input.version,
      kind: input.kind,
      task: input.task,
      description: input.description ?? null,
      defaultParameters: input.defaultParameters ?? {},
      cacheable: input.cacheable ?? false,
      cacheTtlSeconds: input.cacheTtlSeconds ?? null,
      rateLimitPerMinute: input.rateLimitPerMinute ?? null,
      maxBatchSize: input.maxBatchSize ?? null,
      maxQueueDelayMs: input.maxQueueDelayMs ?? null,
    };
    if (input.kind === ModelKind.ONNX) {
      if (input.endpoint || input.remoteName) {
        throw badInput('endpoint and remoteName are for REMOTE models', { path: 'endpoint' });
      }
      const full = this.resolvePath(input.path ?? '');
      return {
        ...common,
        path: path.relative(this.modelDir, full),
        endpoint: null,
        remoteName: null,
        remoteProtocol: null,
      };
    }
    if (input.path) {
      throw badInput('path is for ONNX models', { path: 'path' });
    }
    let url: URL;
    try {
      url = new URL(input.endpoint ?? '');
    } catch {
      throw badInput('endpoint must be an http(s) URL', { path: 'endpoint' });
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw badInput('endpoint must be an http(s) URL', { path: 'endpoint' });
    }
    const remoteName = input.remoteName ?? input.name;
    if (!NAME.test(remoteName)) {
      throw badInput('remoteName: 1–128 letters, digits, . _ -', { path: 'remoteName' });
    }
    return {
      ...common,
      path: null,
      endpoint: url.toString().replace(/\/+$/, ''),
      remoteName,
      remoteProtocol: input.remoteProtocol ?? RemoteProtocol.OPEN_INFERENCE_V2,
    };
  }

  /** Soft-deletes the model and releases its session. */
  async delete(id: string): Promise<boolean> {
    const modelId = parseId(id);
    if (!(await this.deps.models.softDelete(modelId))) {
      throw notFound('Model');
    }
    await this.release(modelId);
    return true;
  }

  async release(modelId: string): Promise<void> {
    const handle = this.handles.get(modelId);
    this.handles.delete(modelId);
    this.providers.delete(modelId);
    this.ready.delete(modelId);
    await handle?.then((h) => h.close()).catch(() => undefined);
  }

  /**
   * Registers the models listed in `<MODEL_DIR>/manifest.json` that are not registered yet
   * (idempotent, and safe when replicas start together: the unique index decides).
   */
  async registerShipped(): Promise<string[]> {
    const manifestFile = path.join(this.modelDir, 'manifest.json');
    if (!existsSync(manifestFile)) {
      return [];
    }
    const manifest = JSON.parse(await readFile(manifestFile, 'utf8')) as ShippedModel[];
    const registered: string[] = [];
    for (const shipped of manifest) {
      if (await this.deps.models.find({ name: shipped.name, version: shipped.version })) {
        continue;
      }
      try {
        await this.register({
          name: shipped.name,
          version: shipped.version,
          kind: ModelKind.ONNX,
          task: shipped.task as ModelTask,
          description: shipped.description,
          path: shipped.path,
          defaultParameters: shipped.defaultParameters,
          cacheable: shipped.cacheable,
          maxBatchSize: shipped.maxBatchSize ?? null,
          maxQueueDelayMs: shipped.maxQueueDelayMs ?? null,
        });
        registered.push(`${shipped.name}@${shipped.version}`);
      } catch (error) {
        if (!(error instanceof Error && 'code' in error && error.code === 'CONFLICT')) {
          throw error;
        }
      }
    }
    return registered;
  }

  async close(): Promise<void> {
    await Promise.all([...this.handles.keys()].map((id) => this.release(id)));
  }
}
