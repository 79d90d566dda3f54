import { cp, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { onnx } from 'onnx-proto';

/**
 * A benchmark-only model, never shipped: an MLP classifier with random weights over one
 * 1,024-float input (`x` [batch, 1024] → `probabilities` [batch, 16]). The shipped models are
 * too cheap to show what batching buys — their cost is all request handling — so this one
 * has enough weights (21 M parameters, 84 MB) that one request alone is memory-bound (a
 * matrix-vector product reads every weight) while a batch reuses each weight for every row.
 */
export const BENCH_MODEL = {
  name: 'bench-mlp-1024',
  path: 'bench-mlp-1024/model.onnx',
  input: 'x',
  output: 'probabilities',
  layers: [1024, 4096, 4096, 16],
} as const;

export const BENCH_INPUT_SIZE = BENCH_MODEL.layers[0];

// ONNX opset 17 needs IR version 8, the newest onnx-proto 8 can write (as scripts/build-models.ts).
const IR_VERSION = 8;
const OPSET = 17;
const FLOAT = onnx.TensorProto.DataType.FLOAT;

/** A fixed-seed LCG, so every run benchmarks the same weights. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    return state / 2 ** 32 - 0.5;
  };
}

function floatTensor(
  name: string,
  dims: number[],
  next: () => number,
  scale: number,
): onnx.ITensorProto {
  const values = new Float32Array(dims.reduce((a, b) => a * b, 1));
  for (let i = 0; i < values.length; i++) {
    values[i] = next() * scale;
  }
  // Float32Array is little-endian on every host Node runs on, as ONNX raw data must be.
  return { name, dims, dataType: FLOAT, rawData: new Uint8Array(values.buffer) };
}

/** The model's bytes: Gemm → Relu per hidden layer, then Gemm → Softmax. */
export function buildBenchModel(): Uint8Array {
  const next = random(1_024);
  const { layers } = BENCH_MODEL;
  const initializer: onnx.ITensorProto[] = [];
  const nodes: onnx.INodeProto[] = [];
  let previous: string = BENCH_MODEL.input;
  for (let i = 0; i < layers.length - 1; i++) {
    const [fanIn, fanOut] = [layers[i]!, layers[i + 1]!];
    initializer.push(floatTensor(`w${i}`, [fanIn, fanOut], next, 2 / Math.sqrt(fanIn)));
    initializer.push(floatTensor(`b${i}`, [fanOut], next, 0.1));
    nodes.push({ opType: 'Gemm', input: [previous, `w${i}`, `b${i}`], output: [`z${i}`] });
    previous = `z${i}`;
    if (i < layers.length - 2) {
      nodes.push({ opType: 'Relu', input: [previous], output: [`a${i}`] });
      previous = `a${i}`;
    }
  }
  nodes.push({
    opType: 'Softmax',
    input: [previous],
    output: [BENCH_MODEL.output],
    attribute: [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 1 }],
  });
  const tensor = (name: string, width: number) => ({
    name,
    type: {
      tensorType: {
        elemType: FLOAT,
        shape: { dim: [{ dimParam: 'batch' }, { dimValue: width }] },
      },
    },
  });
  const model = onnx.ModelProto.create({
    irVersion: IR_VERSION,
    opsetImport: [{ domain: '', version: OPSET }],
    producerName: 'context-server/bench/bench-model.ts',
    docString: 'Benchmark-only MLP with random weights; not a trained model.',
    graph: {
      name: BENCH_MODEL.name,
      node: nodes,
      initializer,
      input: [tensor(BENCH_MODEL.input, layers[0])],
      output: [tensor(BENCH_MODEL.output, layers.at(-1)!)],
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

/**
 * A MODEL_DIR for the benchmarked server: copies of the shipped models (with their
 * manifest, so they register at start) plus the benchmark MLP, which the bench registers
 * itself in the variants it compares.
 */
export async function prepareModelDir(shippedDir: string, dir: string): Promise<string> {
  await cp(shippedDir, dir, { recursive: true });
  const file = path.join(dir, BENCH_MODEL.path);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, buildBenchModel());
  return file;
}

/** Deterministic inputs: `count` rows of BENCH_INPUT_SIZE values in [0, 1), 3 decimals. */
export function benchInputs(count: number, seed = 7): number[][] {
  const next = random(seed);
  return Array.from({ length: count }, () =>
    Array.from({ length: BENCH_INPUT_SIZE }, () => Math.round((next() + 0.5) * 1000) / 1000),
  );
}
