import { existsSync } from 'node:fs';
import path from 'node:path';
import {
  InferenceError,
  type BackendResult,
  type ModelHandle,
  type PreparedInput,
} from '../backend';
import { GenerationScheduler } from '../generation';
import { MicroBatcher, type BatchOptions } from '../micro-batcher';
import { loadTokenizer, type Tokenizer } from '../tokenizers/tokenizer';
import { type EffectiveParameters, type TensorData, type TensorSpec } from '../types';
import { type ModelRuntime } from './onnx-pool';

export interface OnnxModelOptions {
  readonly key: string;
  readonly file: string;
  readonly task: 'TEXT_GENERATION' | 'TEXT_CLASSIFICATION' | 'TENSOR';
  readonly batching: Omit<BatchOptions, 'concurrency'>;
  readonly onBatch?: (size: number) => void;
}

/** Text models keep their vocabulary beside the weights. */
export function tokenizerPathOf(onnxFile: string): string {
  return path.join(path.dirname(onnxFile), 'tokenizer.json');
}

/** The default length text classifiers read; longer inputs are truncated. */
const DEFAULT_MAX_LENGTH = 512;

function softmaxRow(row: Float32Array): number[] {
  // The shipped classifiers already end in Softmax; normalising again is harmless for them
  // and makes models that output raw logits usable too.
  const sum = row.reduce((a, b) => a + b, 0);
  const isDistribution = row.every((v) => v >= 0) && Math.abs(sum - 1) < 1e-3;
  if (isDistribution) {
    return Array.from(row);
  }
  const max = Math.max(...row);
  const exps = Array.from(row, (v) => Math.exp(v - max));
  const total = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / total);
}

function rowsOf(t: TensorData): Float32Array[] {
  const [batch, width] = [t.dims[0] ?? 1, t.dims.slice(1).reduce((a, b) => a * b, 1)];
  const data =
    t.data instanceof Float32Array ? t.data : Float32Array.from(t.data as ArrayLike<number>);
  return Array.from({ length: batch }, (_, i) => data.subarray(i * width, (i + 1) * width));
}

/** Concatenates same-shaped tensors along dimension 0. */
function concat(tensors: readonly TensorData[]): TensorData {
  const first = tensors[0]!;
  const total = tensors.reduce((n, t) => n + t.data.length, 0);
  const Ctor = first.data.constructor as new (n: number) => TensorData['data'];
  const data = new Ctor(total);
  let offset = 0;
  for (const t of tensors) {
    (data as unknown as { set(a: ArrayLike<unknown>, o: number): void }).set(
      t.data as ArrayLike<unknown>,
      offset,
    );
    offset += t.data.length;
  }
  const dim0 = tensors.reduce((n, t) => n + (t.dims[0] ?? 1), 0);
  return { type: first.type, dims: [dim0, ...first.dims.slice(1)], data };
}

/** Splits a batch output back into per-request tensors of `sizes[i]` rows each. */
function split(t: TensorData, sizes: readonly number[]): TensorData[] {
  const rowWidth = t.dims.slice(1).reduce((a, b) => a * b, 1);
  let row = 0;
  return sizes.map((n) => {
    const part = t.data.slice(row * rowWidth, (row + n) * rowWidth) as TensorData['data'];
    row += n;
    return { type: t.type, dims: [n, ...t.dims.slice(1)], data: part };
  });
}

export const toWire = (t: TensorData) => ({
  shape: [...t.dims],
  datatype: t.type,
  data: Array.from(t.data as ArrayLike<number | bigint>, (v) =>
    typeof v === 'bigint' ? Number(v) : v,
  ),
});

/** A handle whose load figures are read live from its batcher or scheduler. */
function handleOf(
  base: Pick<ModelHandle, 'executionProvider' | 'inputs' | 'outputs' | 'close'>,
  queue: { readonly pressure: number; readonly queueDepth: number },
  infer: ModelHandle['infer'],
): ModelHandle {
  return {
    ...base,
    get pressure() {
      return queue.pressure;
    },
    get queueDepth() {
      return queue.queueDepth;
    },
    infer,
  };
}

/**
 * An ONNX model served in-process: loads the session in the worker pool and puts the task's
 * batching in front of it (dynamic batching for classifiers and tensors, continuous batching
 * of decoding steps for generation).
 */
export async function openOnnxModel(
  runtime: ModelRuntime,
  options: OnnxModelOptions,
): Promise<ModelHandle> {
  if (!existsSync(options.file)) {
    throw new InferenceError(`Model file not found: ${path.basename(options.file)}`);
  }
  const info = await runtime.load(options.key, options.file);
  const run = (feeds: Record<string, TensorData>) => runtime.run(options.key, feeds);
  const inputName = info.inputs[0]?.name;
  const outputName = info.outputs[0]?.name;
  if (!inputName || !outputName) {
    throw new InferenceError('The model has no inputs or no outputs');
  }
  const batchOptions: BatchOptions = { ...options.batching, concurrency: runtime.parallelism };

  let tokenizer: Tokenizer | undefined;
  if (options.task !== 'TENSOR') {
    const file = tokenizerPathOf(options.file);
    if (!existsSync(file)) {
      throw new InferenceError('A text model needs a tokenizer.json beside its .onnx file');
    }
    tokenizer = await loadTokenizer(file);
  }

  const base = {
    executionProvider: info.executionProvider,
    inputs: info.inputs as readonly TensorSpec[],
    outputs: info.outputs as readonly TensorSpec[],
    close: () => runtime.release(options.key),
  };

  if (options.task === 'TEXT_CLASSIFICATION') {
    const tok = tokenizer!;
    const labels = tok.file.labels ?? [];
    const maxLength = (tok.file as { maxLength?: number }).maxLength ?? DEFAULT_MAX_LENGTH;
    const batcher = new MicroBatcher<string, { label: string; scores: Record<string, number> }>(
      batchOptions,
      async (texts) => {
        const ids = texts.map((t) => tok.encode(t).slice(0, maxLength));
        const width = Math.max(1, ...ids.map((r) => r.length));
        const data = new BigInt64Array(texts.length * width).fill(BigInt(tok.file.padId));
        ids.forEach((row, i) => row.forEach((id, j) => (data[i * width + j] = BigInt(id))));
        const out = await run({
          [inputName]: { type: 'int64', dims: [texts.length, width], data },
        });
        return rowsOf(out[outputName]!).map((row) => {
          const probs = softmaxRow(row);
          const names = probs.map((_, i) => labels[i] ?? String(i));
          const best = probs.indexOf(Math.max(...probs));
          return {
            label: names[best]!,
            scores: Object.fromEntries(names.map((n, i) => [n, probs[i]!])),
          };
        });
      },
      options.onBatch,
    );
    return handleOf(base, batcher, async (input: PreparedInput): Promise<BackendResult> => {
      const { value, batchSize } = await batcher.submit((input as { text: string }).text);
      return { output: value, batchSize };
    });
  }

  if (options.task === 'TEXT_GENERATION') {
    const tok = tokenizer!;
    const contextLength = tok.file.contextLength ?? 1;
    const exclude = new Set([tok.file.padId, tok.file.unknownId]);
    const scheduler = new GenerationScheduler(
      {
        maxBatchSize: options.batching.maxBatchSize,
        maxQueueDelayMs: options.batching.maxQueueDelayMs,
        contextLength,
        padId: tok.file.padId,
        endId: tok.file.endId,
        exclude,
        decode: (ids) => tok.decode(ids),
      },
      async (contexts) => {
        const data = BigInt64Array.from(contexts.flat(), (v) => BigInt(v));
        const out = await run({
          [inputName]: { type: 'int64', dims: [contexts.length, contextLength], data },
        });
        return rowsOf(out[outputName]!);
      },
      options.onBatch,
    );
    return handleOf(
      base,
      scheduler,
      async (input: PreparedInput, parameters: EffectiveParameters): Promise<BackendResult> => {
        // Character models were trained on text with whitespace runs collapsed to one space.
        const given = (input as { prompt: string }).prompt;
        const prompt = tok.encode(tok.file.type === 'char' ? given.replace(/\s+/g, ' ') : given);
        const generated = await scheduler.generate(prompt, parameters);
        let text = tok.decode(generated.tokens);
        if (generated.finishReason === 'stop') {
          const stop = (parameters.stop as string[]).find((w) => text.endsWith(w))!;
          text = text.slice(0, text.length - stop.length);
        }
        return {
          output: { text, finishReason: generated.finishReason, tokens: generated.tokens.length },
          batchSize: generated.batchSize,
        };
      },
    );
  }

  // TENSOR: requests whose inputs share dtype and trailing dims run as one batch along
  // dimension 0 when the model's first dimension is dynamic; others run alone.
  const batchable = info.inputs.every((s) => s.dims[0] === -1);
  const signature = (t: Readonly<Record<string, TensorData>>) =>
    Object.entries(t)
      .map(([n, v]) => `${n}:${v.type}:${v.dims.slice(1).join('x')}`)
      .sort()
      .join('|');
  const batcher = new MicroBatcher<
    Readonly<Record<string, TensorData>>,
    Record<string, TensorData>
  >(
    batchable ? batchOptions : { ...batchOptions, maxBatchSize: 1 },
    async (items) => {
      const groups = new Map<string, number[]>();
      items.forEach((item, i) =>
        groups.set(signature(item), [...(groups.get(signature(item)) ?? []), i]),
      );
      const results: (Record<string, TensorData> | Error)[] = new Array(items.length);
      await Promise.all(
        [...groups.values()].map(async (indices) => {
          try {
            const members = indices.map((i) => items[i]!);
            const feeds = Object.fromEntries(
              Object.keys(members[0]!).map((name) => [name, concat(members.map((m) => m[name]!))]),
            );
            const out = await run(feeds);
            const sizes = members.map((m) => Object.values(m)[0]!.dims[0] ?? 1);
            const parts = Object.fromEntries(
              Object.entries(out).map(([n, t]) => [n, split(t, sizes)]),
            );
            indices.forEach((itemIndex, k) => {
              results[itemIndex] = Object.fromEntries(
                Object.entries(parts).map(([n, p]) => [n, p[k]!]),
              );
            });
          } catch (error) {
            for (const i of indices) {
              results[i] = new InferenceError(
                error instanceof Error ? error.message : String(error),
              );
            }
          }
        }),
      );
      return results;
    },
    options.onBatch,
  );
  return handleOf(base, batcher, async (input: PreparedInput): Promise<BackendResult> => {
    const { value, batchSize } = await batcher.submit(
      (input as { tensors: Record<string, TensorData> }).tensors,
    );
    return {
      output: Object.fromEntries(Object.entries(value).map(([n, t]) => [n, toWire(t)])),
      batchSize,
    };
  });
}
