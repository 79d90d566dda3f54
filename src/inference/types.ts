/**
 * Shared vocabulary of the inference layer: tensors, tokenizer files, the shipped-model
 * manifest and inference parameters.
 */

/** OIP v2 / onnxruntime element types this server accepts. */
export type TensorType = 'float32' | 'float64' | 'int32' | 'int64' | 'bool' | 'uint8' | 'int8';

export type TensorArray =
  Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | Int8Array;

/** The typed array of each element type (bool travels as one byte per value). */
export const TENSOR_ARRAYS: Readonly<
  Record<
    TensorType,
    {
      new (length: number): TensorArray;
      new (buffer: ArrayBufferLike, byteOffset: number, length: number): TensorArray;
    }
  >
> = {
  float32: Float32Array,
  float64: Float64Array,
  int32: Int32Array,
  int64: BigInt64Array,
  bool: Uint8Array,
  uint8: Uint8Array,
  int8: Int8Array,
};

/** A tensor in transit between the server, the batcher and a runtime. */
export interface TensorData {
  readonly type: TensorType;
  readonly dims: readonly number[];
  readonly data: TensorArray;
}

export interface TensorSpec {
  readonly name: string;
  readonly type: string;
  /** -1 for a dynamic dimension. */
  readonly dims: number[];
}

/**
 * `tokenizer.json`, kept beside a text model's `.onnx` file. Text models (TEXT_GENERATION,
 * TEXT_CLASSIFICATION) must have one; TENSOR models need none.
 *
 * - `word`: text is lowercased when `lowercase`, split into words by `pattern` (a JS regex
 *   source, global flag implied; default `[a-z0-9']+`), each word mapped to its index in
 *   `vocab`, unknown words to `unknownId`.
 * - `char`: each character (after `lowercase`) mapped to its index in `vocab`, unknown
 *   characters to `unknownId`.
 *
 * Index `padId` pads batches; models must give it no weight.
 */
export interface TokenizerFile {
  readonly type: 'word' | 'char';
  readonly vocab: readonly string[];
  readonly lowercase: boolean;
  readonly pattern?: string;
  readonly unknownId: number;
  readonly padId: number;
  /** TEXT_CLASSIFICATION: the label of each output column, in order. */
  readonly labels?: readonly string[];
  /**
   * TEXT_GENERATION: how many previous tokens the model reads (an n-gram model of order n
   * reads n-1); the model's input is `[batch, contextLength]` token ids and its output
   * `[batch, vocab]` logits of the next token.
   */
  readonly contextLength?: number;
  /** TEXT_GENERATION: the token that ends a text, if the model has one. */
  readonly endId?: number;
}

/** One entry of `models/manifest.json`: a shipped model, registered at first start. */
export interface ShippedModel {
  readonly name: string;
  readonly version: string;
  readonly task: 'TEXT_GENERATION' | 'TEXT_CLASSIFICATION' | 'TENSOR';
  readonly description: string;
  /** Relative to the models directory, e.g. `sentiment-afinn/model.onnx`. */
  readonly path: string;
  readonly defaultParameters: Record<string, unknown>;
  readonly cacheable: boolean;
  readonly maxBatchSize?: number;
  readonly maxQueueDelayMs?: number;
  /** How the model was built and how good it is, e.g. held-out accuracy. */
  readonly metrics?: Record<string, number | string>;
  readonly source?: string;
}

/** Inference parameters after adaptation; keys are the wire names clients send. */
export interface EffectiveParameters {
  temperature: number;
  top_k: number;
  top_p: number;
  max_tokens: number;
  seed?: number;
  verbose?: boolean;
  safety_filter?: boolean;
  /** The load the adapter used: max(context serverLoad, measured server load), 0–1. */
  server_load: number;
  [key: string]: unknown;
}
