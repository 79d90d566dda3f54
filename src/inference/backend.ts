import { type EffectiveParameters, type TensorData, type TensorSpec } from './types';

/** What a model is asked to do, after input preparation and parameter adaptation. */
export type PreparedInput =
  | { readonly task: 'TEXT_CLASSIFICATION'; readonly text: string }
  | { readonly task: 'TEXT_GENERATION'; readonly prompt: string }
  | { readonly task: 'TENSOR'; readonly tensors: Readonly<Record<string, TensorData>> };

export interface BackendResult {
  /** By task: `{ label, scores }`, `{ text, finishReason, tokens }`, or `{ <name>: tensor }`. */
  readonly output: unknown;
  /** How many requests shared the model run that served this one. */
  readonly batchSize: number;
}

/** A loaded model, ready to serve: an ONNX session behind a batcher, or a remote server. */
export interface ModelHandle {
  readonly executionProvider: string;
  readonly inputs: readonly TensorSpec[];
  readonly outputs: readonly TensorSpec[];
  infer(input: PreparedInput, parameters: EffectiveParameters): Promise<BackendResult>;
  /** Queued and running work against capacity (0–1+), for the adapter's load rule. */
  readonly pressure: number;
  readonly queueDepth: number;
  close(): Promise<void>;
}

/** A model failed on this input (INFERENCE_FAILED) rather than being unavailable. */
export class InferenceError extends Error {
  override readonly name = 'InferenceError';
}

/** The model cannot serve now (MODEL_UNAVAILABLE): missing file, remote down, queue full. */
export class ModelUnavailableError extends Error {
  override readonly name = 'ModelUnavailableError';
}
