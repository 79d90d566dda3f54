import { AppError, ErrorCode, badInput, notFound } from '../graphql/errors';
import { type Logger } from '../ops/logger';
import { inSpan } from '../ops/tracing';
import { parseId } from '../graphql/ids';
import { type ContextRecord, type ContextService } from '../domains/context/context.service';
import { type HistoryService } from '../domains/history/history.service';
import { type HistoryEntry } from '../domains/history/history.types';
import { type ModelEntity } from '../domains/model/model.entity';
import { type ModelService } from '../domains/model/model.service';
import { ModelKind, ModelTask } from '../domains/model/model.types';
import { type User } from '../domains/user/user.entity';
import { adaptParameters } from './adapter';
import {
  InferenceError,
  ModelUnavailableError,
  type ModelHandle,
  type PreparedInput,
} from './backend';
import { type LoadMonitor } from './load-monitor';
import { QueueFullError } from './micro-batcher';
import { applyFormality } from './postprocess';
import { buildPrompt } from './prepare-input';
import { type ModelRegistry } from './registry';
import { type ResultCache } from './result-cache';
import { parseTensorInput } from './tensors';
import { type ModelThrottle } from './throttle';
import { type EffectiveParameters } from './types';

export interface InferRequest {
  readonly modelId: string;
  readonly input: unknown;
  readonly contextId?: string | null;
  readonly parameters?: Record<string, unknown> | null;
}

export interface InferOutcome {
  readonly model: ModelEntity;
  readonly output: unknown;
  readonly parameters: EffectiveParameters;
  readonly cached: boolean;
  readonly batchSize: number;
  readonly executionProvider: string;
  readonly latencyMs: number;
  readonly historyEntry: HistoryEntry | null;
}

export interface InferenceSettings {
  readonly defaultRateLimitPerMinute: number;
  readonly defaultCacheTtlSeconds: number;
  /** History turns given to a generation model as conversation. */
  readonly historyTurns: number;
  readonly historyLimit: number;
  readonly maxInputChars: number;
  readonly timeoutMs: number;
}

export interface InferenceMetrics {
  observe(model: ModelEntity, seconds: number, outcome: string): void;
  cache(model: ModelEntity, hit: boolean): void;
  throttled(model: ModelEntity): void;
}

export interface InferenceDeps {
  readonly models: ModelService;
  readonly registry: ModelRegistry;
  readonly contexts: ContextService;
  readonly history: HistoryService;
  readonly cache: ResultCache;
  readonly throttle: ModelThrottle;
  readonly load: LoadMonitor;
  readonly settings: InferenceSettings;
  readonly metrics?: InferenceMetrics;
  readonly logger?: Logger;
}

const PROMPT_CHARS = 4_000;

function textInput(input: unknown, keys: readonly string[], maxChars: number): string {
  let text: unknown = input;
  if (input && typeof input === 'object' && !Array.isArray(input)) {
    const key = keys.find((k) => typeof (input as Record<string, unknown>)[k] === 'string');
    text = key ? (input as Record<string, unknown>)[key] : undefined;
  }
  if (typeof text !== 'string') {
    throw badInput(`input must be a string or { ${keys.join(' | ')}: string }`, { path: 'input' });
  }
  if (text.length > maxChars) {
    throw badInput(`input is ${text.length} characters; at most ${maxChars}`, { path: 'input' });
  }
  return text;
}

/** Generation without a seed samples anew each time, so only seeded or greedy runs are cached. */
function deterministic(task: ModelTask, p: EffectiveParameters): boolean {
  return task !== ModelTask.TEXT_GENERATION || p.seed !== undefined || p.temperature === 0;
}

/**
 * The parameters that can change what a run returns, which is what the result cache keys on.
 * Classifiers and tensor models here ignore parameters, so their answers stay cached when
 * load-dependent values (top_k under high load) move; a remote server receives them all.
 */
function outputShaping(model: ModelEntity, p: EffectiveParameters): Partial<EffectiveParameters> {
  if (model.kind === ModelKind.REMOTE) {
    const { server_load: _measured, ...sent } = p;
    return sent;
  }
  if (model.task !== ModelTask.TEXT_GENERATION) {
    return {};
  }
  const { temperature, top_k, top_p, max_tokens, seed, stop } = p;
  return { temperature, top_k, top_p, max_tokens, seed, stop };
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new ModelUnavailableError(`The model did not answer within ${ms} ms`)),
        ms,
      );
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * `infer`, steps 1–10 of the design: authorise and load the context, rate-limit, adapt the
 * parameters to the context, prepare the input (with recent history for generation), serve
 * from the result cache or the model's batcher, post-process, and append the turn to the
 * context's history.
 */
export class InferenceService {
  constructor(private readonly deps: InferenceDeps) {}

  async infer(viewer: User, request: InferRequest): Promise<InferOutcome> {
    const started = performance.now();
    const model = await this.deps.models.findActive(parseId(request.modelId, 'modelId'));
    if (!model) {
      throw notFound('Model');
    }
    const outcome = await inSpan(
      'infer',
      { 'model.name': model.name, 'model.version': model.version, 'model.task': model.task },
      () => this.run(viewer, model, request, started),
    ).catch((error: unknown) => {
      this.deps.metrics?.observe(model, (performance.now() - started) / 1000, 'error');
      throw error;
    });
    this.deps.metrics?.observe(
      model,
      outcome.latencyMs / 1000,
      outcome.cached ? 'cached' : 'success',
    );
    return outcome;
  }

  private async run(
    viewer: User,
    model: ModelEntity,
    request: InferRequest,
    started: number,
  ): Promise<InferOutcome> {
    const context = request.contextId
      ? await inSpan('context.load', {}, () => this.deps.contexts.get(viewer, request.contextId!))
      : null;
    if (request.contextId && !context) {
      throw notFound('Context');
    }
    const handle = await this.open(model);
    const { parameters } = adaptParameters({
      modelDefaults: model.defaultParameters,
      context: context?.sections ?? null,
      measuredLoad: this.deps.load.load(handle.pressure),
      request: request.parameters ?? null,
    });
    // Counted before the model runs or the history is read: generation reads the context's
    // history to build its prompt, so it is admitted first; other inputs are prepared in
    // memory, and their rate-limit count and cache lookup then go to Redis in one round trip.
    const generation = model.task === ModelTask.TEXT_GENERATION;
    if (generation) {
      await this.admit(model);
    }
    const prepared = await this.prepare(model, handle, request.input, context);
    const cacheable = model.cacheable && deterministic(model.task, parameters);
    const key = cacheable
      ? this.deps.cache.key(model, prepared, outputShaping(model, parameters))
      : undefined;
    const lookup = key
      ? inSpan('cache.get', {}, () => this.deps.cache.get(key))
      : Promise.resolve(null);
    const [hit] = await Promise.all([lookup, generation ? undefined : this.admit(model)]);
    if (key) {
      this.deps.metrics?.cache(model, hit !== null);
    }

    let output: unknown;
    let batchSize = 0;
    let executionProvider = handle.executionProvider;
    if (hit) {
      output = hit.output;
      executionProvider = hit.executionProvider;
    } else {
      const result = await inSpan(
        'model.run',
        { 'model.provider': handle.executionProvider },
        async (span) => {
          const r = await this.execute(handle, prepared, parameters);
          span.setAttribute('inference.batch_size', r.batchSize);
          return r;
        },
      );
      output = result.output;
      batchSize = result.batchSize;
      if (key) {
        await this.deps.cache.set(
          key,
          { output, executionProvider },
          model.cacheTtlSeconds ?? this.deps.settings.defaultCacheTtlSeconds,
        );
      }
    }
    output = this.postprocess(model, output, context);

    const latencyMs = performance.now() - started;
    const historyEntry = context
      ? await inSpan('history.append', {}, () =>
          this.deps.history.append(
            {
              contextId: context.id,
              modelId: model.id,
              input: request.input,
              output,
              parameters,
              latencyMs,
            },
            this.deps.settings.historyLimit,
          ),
        )
      : null;
    return {
      model,
      output,
      parameters,
      cached: hit !== null,
      batchSize,
      executionProvider,
      latencyMs,
      historyEntry,
    };
  }

  /** One request against the model's rate limit; RATE_LIMITED past it. */
  private async admit(model: ModelEntity): Promise<void> {
    try {
      await this.deps.throttle.take(
        model.id,
        model.rateLimitPerMinute ?? this.deps.settings.defaultRateLimitPerMinute,
      );
    } catch (error) {
      this.deps.metrics?.throttled(model);
      throw error;
    }
  }

  private async open(model: ModelEntity): Promise<ModelHandle> {
    try {
      return await this.deps.registry.handleFor(model);
    } catch (error) {
      // The cause can name files or hosts: it goes to the log, not to the client.
      this.deps.logger?.warn({ model: model.id, err: error }, 'model unavailable');
      throw new AppError(
        ErrorCode.MODEL_UNAVAILABLE,
        `Model ${model.name}@${model.version} is unavailable`,
      );
    }
  }

  private async prepare(
    model: ModelEntity,
    handle: ModelHandle,
    input: unknown,
    context: ContextRecord | null,
  ): Promise<PreparedInput> {
    const max = this.deps.settings.maxInputChars;
    switch (model.task) {
      case ModelTask.TEXT_CLASSIFICATION:
        return { task: model.task, text: textInput(input, ['text'], max) };
      case ModelTask.TEXT_GENERATION: {
        const prompt = textInput(input, ['prompt', 'text'], max);
        const turns = context ? await this.recentTurns(context.id) : [];
        return {
          task: model.task,
          prompt: buildPrompt({
            prompt,
            history: turns,
            preferences: context?.sections.user.preferences ?? {},
            maxTurns: this.deps.settings.historyTurns,
            maxChars: PROMPT_CHARS,
          }),
        };
      }
      case ModelTask.TENSOR:
        return { task: model.task, tensors: parseTensorInput(input, handle.inputs) };
    }
  }

  private async recentTurns(contextId: string) {
    const pages = await this.deps.history.pages([contextId], {
      direction: 'backward',
      size: this.deps.settings.historyTurns,
      bound: null,
    });
    return (pages.get(contextId)?.entries ?? []).map((e) => ({ input: e.input, output: e.output }));
  }

  private async execute(
    handle: ModelHandle,
    prepared: PreparedInput,
    parameters: EffectiveParameters,
  ) {
    try {
      return await withTimeout(handle.infer(prepared, parameters), this.deps.settings.timeoutMs);
    } catch (error) {
      if (error instanceof QueueFullError || error instanceof ModelUnavailableError) {
        throw new AppError(ErrorCode.MODEL_UNAVAILABLE, error.message);
      }
      if (error instanceof InferenceError) {
        throw new AppError(
          ErrorCode.INFERENCE_FAILED,
          `The model failed on this input: ${error.message}`,
        );
      }
      if (error instanceof AppError) {
        throw error;
      }
      throw new AppError(ErrorCode.INFERENCE_FAILED, 'The model failed on this input');
    }
  }

  /** Formality from the context's preferences shapes generated text. */
  private postprocess(model: ModelEntity, output: unknown, context: ContextRecord | null): unknown {
    const formality = context?.sections.user.preferences.formality;
    if (
      model.task !== ModelTask.TEXT_GENERATION ||
      !formality ||
      !output ||
      typeof output !== 'object'
    ) {
      return output;
    }
    const generated = output as { text?: unknown };
    return typeof generated.text === 'string'
      ? { ...generated, text: applyFormality(generated.text, formality) }
      : output;
  }
}
