import { randomUUID } from 'node:crypto';
import { type ModelEntity } from '../../domains/model/model.entity';
import { RemoteProtocol } from '../../domains/model/model.types';
import { type Logger } from '../../ops/logger';
import {
  InferenceError,
  ModelUnavailableError,
  type BackendResult,
  type ModelHandle,
  type PreparedInput,
} from '../backend';
import { OIP_DATATYPES, TO_OIP_DATATYPE } from '../tensors';
import {
  type EffectiveParameters,
  type TensorData,
  type TensorSpec,
  type TensorType,
} from '../types';

export interface RemoteSettings {
  /** Bound on each HTTP call to a remote model server, including reading its answer. */
  readonly remoteTimeoutMs: number;
  /** Extra attempts after a connection error; timeouts and answers are never retried. */
  readonly remoteRetries: number;
  /**
   * Endpoint origin → Authorization header value. Kept out of the database so that reading
   * the `models` table does not reveal credentials; never logged.
   */
  readonly authorization?: Readonly<Record<string, string>>;
}

/** First wait before a retry; doubled per attempt up to {@link MAX_BACKOFF_MS}. */
const BACKOFF_MS = 50; // 50 ms
const MAX_BACKOFF_MS = 500; // 500 ms
/** How much of a remote's error message reaches our client. */
const REMOTE_MESSAGE_CHARS = 200;
const EXECUTION_PROVIDER = 'remote';

/**
 * The OIP name of variable-length strings. onnxruntime calls the same element type
 * `string`, which is what {@link TensorSpec.type} records.
 */
const OIP_BYTES = 'BYTES';
const STRING_TYPE = 'string';

/** TF Serving signature dtypes and the element types they mean. */
const TF_DTYPES: Readonly<Record<string, string>> = {
  DT_FLOAT: 'float32',
  DT_DOUBLE: 'float64',
  DT_INT32: 'int32',
  DT_INT64: 'int64',
  DT_BOOL: 'bool',
  DT_UINT8: 'uint8',
  DT_INT8: 'int8',
  DT_STRING: STRING_TYPE,
};

/** Codes of connection failures where the request never got an answer, so a retry is safe. */
const CONNECTION_ERRORS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/**
 * Parses `REMOTE_AUTHORIZATION`: a JSON object from endpoint origin to Authorization header
 * value. Keys are normalised to `URL.origin` so that `https://host/` and `https://host` agree.
 * The error never repeats the value: it holds credentials.
 */
export function parseRemoteAuthorization(json: string | undefined): Record<string, string> {
  if (json === undefined || json.trim() === '') {
    return {};
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw new Error('REMOTE_AUTHORIZATION must be a JSON object of origin → header value');
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new Error('REMOTE_AUTHORIZATION must be a JSON object of origin → header value');
  }
  const result: Record<string, string> = {};
  for (const [key, value] of Object.entries(parsed)) {
    if (typeof value !== 'string' || value.trim() === '' || /[\r\n]/.test(value)) {
      throw new Error(`REMOTE_AUTHORIZATION: the value for ${key} must be a one-line string`);
    }
    let origin: string;
    try {
      origin = new URL(key).origin;
    } catch {
      throw new Error(`REMOTE_AUTHORIZATION: ${key} is not an http(s) origin`);
    }
    if (origin === 'null' || !/^https?:/.test(origin)) {
      throw new Error(`REMOTE_AUTHORIZATION: ${key} is not an http(s) origin`);
    }
    result[origin] = value;
  }
  return result;
}

type Purpose = 'open' | 'infer';

interface RemoteCaller {
  call(method: 'GET' | 'POST', path: string, body: unknown, purpose: Purpose): Promise<unknown>;
}

function isTimeout(error: unknown): boolean {
  return error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError');
}

/** fetch reports every network failure as `TypeError: fetch failed` with the reason as cause. */
function connectionCode(error: unknown): string | undefined {
  if (!(error instanceof Error)) {
    return undefined;
  }
  const cause = (error as { cause?: { code?: unknown; message?: unknown } }).cause;
  const code = typeof cause?.code === 'string' ? cause.code : (error as { code?: unknown }).code;
  if (typeof code === 'string' && CONNECTION_ERRORS.has(code)) {
    return code;
  }
  if (/socket hang up/i.test(`${error.message} ${String(cause?.message ?? '')}`)) {
    return 'ECONNRESET';
  }
  if (error instanceof TypeError) {
    return typeof code === 'string' ? code : 'FETCH_FAILED';
  }
  return undefined;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function remoteMessage(body: unknown, status: number): string {
  const error = body && typeof body === 'object' ? (body as { error?: unknown }).error : undefined;
  const message =
    typeof error === 'string' && error.trim() !== '' ? error : `the remote answered HTTP ${status}`;
  return message.slice(0, REMOTE_MESSAGE_CHARS);
}

function createCaller(
  settings: RemoteSettings,
  logger: Logger,
  model: ModelEntity,
  endpoint: string,
): RemoteCaller {
  const origin = new URL(endpoint).origin;
  const authorization = settings.authorization?.[origin];
  const base = endpoint.replace(/\/+$/, '');
  const log = { model: `${model.name}@${model.version}`, origin };

  async function attempt(method: string, path: string, body: string | undefined) {
    const response = await fetch(`${base}${path}`, {
      method,
      headers: {
        accept: 'application/json',
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(authorization ? { authorization } : {}),
      },
      body,
      signal: AbortSignal.timeout(settings.remoteTimeoutMs),
      // A followed redirect could carry the Authorization header to a host nobody configured.
      redirect: 'error',
    });
    // Read under the same signal: a server that sends headers and then stalls times out too.
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    return {
      status: response.status,
      ok: response.ok,
      body: parsed,
      json: text === '' || parsed !== undefined,
    };
  }

  return {
    async call(method, path, body, purpose) {
      // Serialised outside the retry loop: a TypeError from here is a bug, not the network.
      const payload = body === undefined ? undefined : JSON.stringify(body);
      for (let tries = 0; ; tries++) {
        let answer: Awaited<ReturnType<typeof attempt>>;
        try {
          answer = await attempt(method, path, payload);
        } catch (error) {
          if (isTimeout(error)) {
            logger.warn({ ...log, purpose }, 'remote model server timed out');
            throw new ModelUnavailableError(
              `The remote model server did not answer within ${settings.remoteTimeoutMs} ms`,
            );
          }
          const code = connectionCode(error);
          if (code === undefined) {
            throw error;
          }
          if (tries < settings.remoteRetries) {
            logger.warn(
              { ...log, purpose, code, attempt: tries + 1 },
              'remote model server connection failed; retrying',
            );
            await sleep(Math.min(MAX_BACKOFF_MS, BACKOFF_MS * 2 ** tries));
            continue;
          }
          logger.warn({ ...log, purpose, code }, 'remote model server unreachable');
          // No origin in the message: it reaches clients, and where a remote model lives is
          // for model developers only (model.rules.ts).
          throw new ModelUnavailableError('The remote model server cannot be reached');
        }
        if (answer.ok) {
          if (!answer.json) {
            throw new InferenceError('The remote model server answered with malformed JSON');
          }
          return answer.body;
        }
        const message = remoteMessage(answer.body, answer.status);
        logger.warn(
          { ...log, purpose, status: answer.status },
          'remote model server refused a request',
        );
        // A remote that is down or shedding load is unavailable, whatever we asked it.
        if (purpose === 'open' || answer.status === 503 || answer.status === 429) {
          throw new ModelUnavailableError(
            `The remote model server answered ${answer.status}: ${message}`,
          );
        }
        throw new InferenceError(message);
      }
    },
  };
}

// ---------------------------------------------------------------------------------------
// Wire helpers shared by both protocols

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function typeFromOip(datatype: string): string {
  return datatype === OIP_BYTES ? STRING_TYPE : (OIP_DATATYPES[datatype] ?? datatype.toLowerCase());
}

function oipFromType(type: TensorType): string {
  return TO_OIP_DATATYPE[type];
}

function numbersOf(t: TensorData): number[] {
  return Array.from(t.data as ArrayLike<number | bigint>, (v) =>
    typeof v === 'bigint' ? Number(v) : v,
  );
}

/**
 * The parameters the remote runs with: this server's effective ones, less `server_load`,
 * which reports what this replica measured and is no request to the remote (whose own
 * parameter allowlist may refuse it).
 */
function wireParameters(parameters: EffectiveParameters): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(parameters).filter(([k, v]) => v !== undefined && k !== 'server_load'),
  );
}

function classificationFrom(
  probabilities: readonly unknown[],
  model: ModelEntity,
): { label: string; scores: Record<string, number> } {
  const values = probabilities.map(Number);
  if (values.length === 0 || values.some((v) => !Number.isFinite(v))) {
    throw new InferenceError('The remote answered without class scores');
  }
  const labels = model.defaultParameters.labels;
  const names = values.map((_, i) =>
    Array.isArray(labels) && typeof labels[i] === 'string' ? labels[i] : String(i),
  );
  const best = values.indexOf(Math.max(...values));
  return {
    label: names[best]!,
    scores: Object.fromEntries(names.map((n, i) => [n, values[i]!])),
  };
}

const generationFrom = (text: string) => ({
  text,
  // A remote reports no reason and no token count; characters are the unit we can count.
  finishReason: 'length',
  tokens: text.length,
});

function shapeOf(value: unknown): number[] {
  const shape: number[] = [];
  let current = value;
  while (Array.isArray(current)) {
    shape.push(current.length);
    current = current[0];
  }
  return shape;
}

/** Splits flat row-major `data` into nested arrays of `dims`. */
function nest(data: readonly number[], dims: readonly number[]): unknown {
  if (dims.length === 0) {
    return data[0];
  }
  const [first, ...rest] = dims as [number, ...number[]];
  const width = rest.reduce((a, b) => a * b, 1);
  return Array.from({ length: first }, (_, i) =>
    nest(data.slice(i * width, (i + 1) * width), rest),
  );
}

function tensorFromNested(values: unknown, datatype: string) {
  const data = (Array.isArray(values) ? values.flat(Infinity) : [values]) as unknown[];
  if (!data.every((v) => typeof v === 'number' || typeof v === 'boolean')) {
    throw new InferenceError('The remote answered with non-numeric predictions');
  }
  return { shape: shapeOf(values), datatype, data: data.map(Number) };
}

// ---------------------------------------------------------------------------------------
// Open Inference Protocol v2 (KServe v2, Triton, MLServer, this server's /v2 routes)

function oipSpecs(value: unknown): TensorSpec[] {
  if (value === undefined) {
    return [];
  }
  if (!Array.isArray(value)) {
    throw new ModelUnavailableError('The remote model metadata is malformed');
  }
  return value.map((s: unknown) => {
    if (
      !isRecord(s) ||
      typeof s.name !== 'string' ||
      typeof s.datatype !== 'string' ||
      !Array.isArray(s.shape)
    ) {
      throw new ModelUnavailableError('The remote model metadata is malformed');
    }
    return {
      name: s.name,
      type: typeFromOip(s.datatype),
      dims: s.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : -1)),
    };
  });
}

interface OipOutput {
  readonly name: string;
  readonly datatype: string;
  readonly shape: number[];
  readonly data: unknown[];
}

function oipOutputs(body: unknown): OipOutput[] {
  const outputs = isRecord(body) ? body.outputs : undefined;
  if (!Array.isArray(outputs)) {
    throw new InferenceError('The remote answered without outputs');
  }
  return outputs.map((o: unknown) => {
    if (!isRecord(o) || typeof o.name !== 'string' || !Array.isArray(o.data)) {
      throw new InferenceError('The remote answered with a malformed output');
    }
    return {
      name: o.name,
      datatype: typeof o.datatype === 'string' ? o.datatype : '',
      shape: Array.isArray(o.shape) ? o.shape.map(Number) : [o.data.length],
      data: (o.data as unknown[]).flat(Infinity),
    };
  });
}

function oipInputs(input: PreparedInput) {
  switch (input.task) {
    case 'TEXT_CLASSIFICATION':
      return [{ name: 'text', shape: [1], datatype: OIP_BYTES, data: [input.text] }];
    case 'TEXT_GENERATION':
      return [{ name: 'prompt', shape: [1], datatype: OIP_BYTES, data: [input.prompt] }];
    case 'TENSOR':
      return Object.entries(input.tensors).map(([name, t]) => ({
        name,
        shape: [...t.dims],
        datatype: oipFromType(t.type),
        data: numbersOf(t),
      }));
  }
}

function parseOutputJson(output: OipOutput): unknown {
  try {
    return JSON.parse(String(output.data[0]));
  } catch {
    throw new InferenceError('The remote answered with malformed output_json');
  }
}

function oipResult(task: PreparedInput['task'], body: unknown, model: ModelEntity): unknown {
  const outputs = oipOutputs(body);
  if (task === 'TENSOR') {
    // Element types as the in-process backend names them, so a model's outputs read the same
    // whether it runs here or remotely.
    return Object.fromEntries(
      outputs.map((o) => [
        o.name,
        { shape: o.shape, datatype: typeFromOip(o.datatype), data: o.data },
      ]),
    );
  }
  const json = outputs.find((o) => o.name === 'output_json');
  if (json) {
    return parseOutputJson(json);
  }
  if (task === 'TEXT_CLASSIFICATION') {
    const scores = outputs.find((o) => o.datatype === 'FP32' || o.datatype === 'FP64');
    if (scores) {
      const width = scores.shape.at(-1) ?? scores.data.length;
      return classificationFrom(scores.data.slice(0, width > 0 ? width : undefined), model);
    }
  } else {
    const text = outputs.find((o) => o.name === 'text' && typeof o.data[0] === 'string');
    if (text) {
      return generationFrom(text.data[0] as string);
    }
  }
  throw new InferenceError('The remote answered without an output this task can read');
}

async function openOip(
  caller: RemoteCaller,
  model: ModelEntity,
  remoteName: string,
): Promise<Omit<ModelHandle, 'pressure' | 'queueDepth' | 'close'>> {
  const path = `/v2/models/${encodeURIComponent(remoteName)}`;
  const metadata = await caller.call('GET', path, undefined, 'open');
  if (!isRecord(metadata)) {
    throw new ModelUnavailableError('The remote model metadata is malformed');
  }
  return {
    executionProvider: EXECUTION_PROVIDER,
    inputs: oipSpecs(metadata.inputs),
    outputs: oipSpecs(metadata.outputs),
    async infer(input, parameters): Promise<BackendResult> {
      const body = await caller.call(
        'POST',
        `${path}/infer`,
        { id: randomUUID(), parameters: wireParameters(parameters), inputs: oipInputs(input) },
        'infer',
      );
      return { output: oipResult(input.task, body, model), batchSize: 1 };
    },
  };
}

// ---------------------------------------------------------------------------------------
// TF Serving v1 REST (also KServe v1 ":predict")

/** The `serving_default` signature from `/metadata`, or none when the server has no such route. */
function tfSpecs(metadata: unknown): { inputs: TensorSpec[]; outputs: TensorSpec[] } {
  const signatures = (metadata as { metadata?: { signature_def?: { signature_def?: unknown } } })
    ?.metadata?.signature_def?.signature_def;
  const signature = isRecord(signatures) ? signatures.serving_default : undefined;
  const specs = (entries: unknown): TensorSpec[] =>
    isRecord(entries)
      ? Object.entries(entries).map(([name, s]) => {
          const info = isRecord(s) ? s : {};
          const dims = (info.tensor_shape as { dim?: { size?: unknown }[] } | undefined)?.dim ?? [];
          return {
            name,
            type: TF_DTYPES[String(info.dtype)] ?? String(info.dtype ?? 'unknown').toLowerCase(),
            dims: dims.map((d) => {
              const size = Number(d.size);
              return Number.isInteger(size) && size >= 0 ? size : -1;
            }),
          };
        })
      : [];
  return isRecord(signature)
    ? { inputs: specs(signature.inputs), outputs: specs(signature.outputs) }
    : { inputs: [], outputs: [] };
}

function tfInstances(input: PreparedInput): unknown[] {
  switch (input.task) {
    case 'TEXT_CLASSIFICATION':
      return [input.text];
    case 'TEXT_GENERATION':
      return [input.prompt];
    case 'TENSOR': {
      const entries = Object.entries(input.tensors);
      const rowsOf = (t: TensorData) =>
        t.dims.length === 0 ? [numbersOf(t)[0]] : (nest(numbersOf(t), t.dims) as unknown[]);
      if (entries.length === 1) {
        return rowsOf(entries[0]![1]);
      }
      // Several inputs: TF Serving's row format names each input in every instance.
      const columns = entries.map(([name, t]) => [name, rowsOf(t)] as const);
      const rows = columns[0]?.[1].length ?? 0;
      return Array.from({ length: rows }, (_, i) =>
        Object.fromEntries(columns.map(([name, r]) => [name, r[i]])),
      );
    }
  }
}

function tfResult(
  task: PreparedInput['task'],
  body: unknown,
  model: ModelEntity,
  outputs: readonly TensorSpec[],
): unknown {
  const predictions = isRecord(body) ? body.predictions : undefined;
  if (!Array.isArray(predictions) || predictions.length === 0) {
    throw new InferenceError('The remote answered without predictions');
  }
  const first: unknown = predictions[0];
  if (task === 'TENSOR') {
    const typeOf = (name: string) => outputs.find((o) => o.name === name)?.type ?? 'float32';
    if (isRecord(first)) {
      return Object.fromEntries(
        Object.keys(first).map((name) => [
          name,
          tensorFromNested(
            predictions.map((p) => (isRecord(p) ? p[name] : undefined)),
            typeOf(name),
          ),
        ]),
      );
    }
    const name = outputs.length === 1 ? outputs[0]!.name : 'predictions';
    return { [name]: tensorFromNested(predictions, typeOf(name)) };
  }
  if (task === 'TEXT_CLASSIFICATION') {
    if (Array.isArray(first)) {
      return classificationFrom(first, model);
    }
    if (isRecord(first) && typeof first.label === 'string') {
      return { label: first.label, scores: isRecord(first.scores) ? first.scores : {} };
    }
  } else {
    if (typeof first === 'string') {
      return generationFrom(first);
    }
    if (isRecord(first) && typeof first.text === 'string') {
      return generationFrom(first.text);
    }
  }
  throw new InferenceError('The remote answered with predictions this task cannot read');
}

async function openTfServing(
  caller: RemoteCaller,
  model: ModelEntity,
  remoteName: string,
): Promise<Omit<ModelHandle, 'pressure' | 'queueDepth' | 'close'>> {
  const path = `/v1/models/${encodeURIComponent(remoteName)}`;
  const status = await caller.call('GET', path, undefined, 'open');
  const versions = isRecord(status) ? status.model_version_status : undefined;
  if (
    Array.isArray(versions) &&
    versions.length > 0 &&
    !versions.some((v) => isRecord(v) && v.state === 'AVAILABLE')
  ) {
    throw new ModelUnavailableError(`The remote model ${remoteName} has no AVAILABLE version`);
  }
  // The signature is optional (KServe v1 servers have no /metadata); without it TENSOR
  // inputs cannot be checked here and the specs stay empty.
  const specs = await caller
    .call('GET', `${path}/metadata`, undefined, 'open')
    .then(tfSpecs)
    .catch(() => ({ inputs: [], outputs: [] }));
  return {
    executionProvider: EXECUTION_PROVIDER,
    inputs: specs.inputs,
    outputs: specs.outputs,
    async infer(input): Promise<BackendResult> {
      const body = await caller.call(
        'POST',
        `${path}:predict`,
        { instances: tfInstances(input) },
        'infer',
      );
      return { output: tfResult(input.task, body, model, specs.outputs), batchSize: 1 };
    },
  };
}

/**
 * Opens REMOTE models: Open Inference Protocol v2 (KServe v2 / Triton REST) or TF Serving v1.
 * Each HTTP call is bounded by `remoteTimeoutMs`; connection failures are retried
 * `remoteRetries` times with a short backoff and then read as MODEL_UNAVAILABLE, as does a
 * timeout; an error answer from the remote is the model failing on this input. Bodies are
 * never logged: they carry users' inputs and outputs.
 */
export function createRemoteOpener(
  settings: RemoteSettings,
  logger: Logger,
): (model: ModelEntity) => Promise<ModelHandle> {
  return async (model) => {
    if (!model.endpoint) {
      throw new ModelUnavailableError(`Remote model ${model.name} has no endpoint`);
    }
    const caller = createCaller(settings, logger, model, model.endpoint);
    const remoteName = model.remoteName ?? model.name;
    const open = model.remoteProtocol === RemoteProtocol.TFSERVING_V1 ? openTfServing : openOip;
    const remote = await open(caller, model, remoteName);
    // The remote server queues and batches; this replica only counts what it has in flight.
    let inFlight = 0;
    let closed = false;
    return {
      ...remote,
      pressure: 0,
      get queueDepth() {
        return inFlight;
      },
      async infer(input, parameters) {
        if (closed) {
          throw new ModelUnavailableError(`Remote model ${model.name} was released`);
        }
        inFlight++;
        try {
          return await remote.infer(input, parameters);
        } finally {
          inFlight--;
        }
      },
      async close() {
        closed = true;
      },
    };
  };
}
