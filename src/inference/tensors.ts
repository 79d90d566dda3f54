import { badInput } from '../graphql/errors';
import { TENSOR_ARRAYS, type TensorData, type TensorSpec, type TensorType } from './types';

/** OIP v2 datatype names and the ONNX element types they mean. */
export const OIP_DATATYPES: Readonly<Record<string, TensorType>> = {
  FP32: 'float32',
  FP64: 'float64',
  INT32: 'int32',
  INT64: 'int64',
  BOOL: 'bool',
  UINT8: 'uint8',
  INT8: 'int8',
  float32: 'float32',
  float64: 'float64',
  int32: 'int32',
  int64: 'int64',
  bool: 'bool',
  uint8: 'uint8',
  int8: 'int8',
};

export const TO_OIP_DATATYPE: Readonly<Record<TensorType, string>> = {
  float32: 'FP32',
  float64: 'FP64',
  int32: 'INT32',
  int64: 'INT64',
  bool: 'BOOL',
  uint8: 'UINT8',
  int8: 'INT8',
};

/** Largest tensor a request may send, in elements. */
export const MAX_ELEMENTS = 1_000_000;

/** The values as the tensor's typed array, checked one by one and written in one pass. */
function typed(type: TensorType, values: readonly unknown[], path: string): TensorData['data'] {
  const out = new TENSOR_ARRAYS[type](values.length);
  const integral = type !== 'float32' && type !== 'float64';
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    const n = typeof v === 'boolean' ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isFinite(n)) {
      throw badInput(`${path}.data[${i}] is not a finite number`, { path: `${path}.data` });
    }
    if (integral && !Number.isInteger(n)) {
      throw badInput(`${path}.data[${i}] must be an integer for ${type}`, { path: `${path}.data` });
    }
    if (type === 'int64') {
      (out as BigInt64Array)[i] = BigInt(n);
    } else {
      (out as Float32Array)[i] = n;
    }
  }
  return out;
}

/**
 * A TENSOR model's input, `{ <input name>: { shape, datatype, data } }` as in OIP v2, checked
 * against the model's specs: every input present and known, dtype equal, fixed dimensions
 * equal, data length equal to the shape's product.
 */
export function parseTensorInput(
  input: unknown,
  specs: readonly TensorSpec[],
): Record<string, TensorData> {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw badInput(
      'input must be an object of named tensors: { <name>: { shape, datatype, data } }',
    );
  }
  const given = input as Record<string, unknown>;
  if (specs.length === 0) {
    // A remote model whose server publishes no metadata: check the tensors' own consistency
    // and leave the rest to that server.
    return parseTensorInput(
      input,
      Object.keys(given).map((name) => {
        const t = given[name] as { shape?: unknown; datatype?: unknown } | undefined;
        const type = typeof t?.datatype === 'string' ? OIP_DATATYPES[t.datatype] : undefined;
        const dims = Array.isArray(t?.shape) ? t.shape.map(() => -1) : [];
        return { name, type: type ?? 'unknown', dims };
      }),
    );
  }
  for (const name of Object.keys(given)) {
    if (!specs.some((s) => s.name === name)) {
      throw badInput(
        `input.${name}: the model has no input of that name (inputs: ${specs.map((s) => s.name).join(', ')})`,
      );
    }
  }
  const feeds: Record<string, TensorData> = {};
  for (const spec of specs) {
    const path = `input.${spec.name}`;
    const t = given[spec.name] as
      { shape?: unknown; datatype?: unknown; data?: unknown } | undefined;
    if (!t || typeof t !== 'object') {
      throw badInput(`${path} is missing`, { path });
    }
    const type = typeof t.datatype === 'string' ? OIP_DATATYPES[t.datatype] : undefined;
    if (!type) {
      throw badInput(`${path}.datatype must be one of ${Object.keys(TO_OIP_DATATYPE).join(', ')}`, {
        path,
      });
    }
    if (type !== spec.type) {
      throw badInput(`${path}.datatype is ${type}; the model expects ${spec.type}`, { path });
    }
    if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw badInput(`${path}.shape must be an array of non-negative integers`, { path });
    }
    const shape = t.shape as number[];
    if (shape.length !== spec.dims.length || spec.dims.some((d, i) => d !== -1 && d !== shape[i])) {
      throw badInput(
        `${path}.shape [${shape.join(', ')}] does not fit the model's [${spec.dims.join(', ')}]`,
        { path },
      );
    }
    const elements = shape.reduce((a, b) => a * b, 1);
    if (elements > MAX_ELEMENTS) {
      throw badInput(`${path} has ${elements} elements; at most ${MAX_ELEMENTS}`, { path });
    }
    const raw = t.data;
    // Nested rows ([[…], […]]) are flattened; a flat list (the usual case) is read as it is.
    const data = Array.isArray(raw)
      ? raw.some((v) => Array.isArray(v))
        ? (raw as unknown[]).flat(Infinity)
        : (raw as unknown[])
      : undefined;
    if (!data || data.length !== elements) {
      throw badInput(`${path}.data must hold ${elements} values for shape [${shape.join(', ')}]`, {
        path,
      });
    }
    feeds[spec.name] = { type, dims: shape, data: typed(type, data, path) };
  }
  return feeds;
}
