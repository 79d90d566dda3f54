import { cp, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { onnx } from 'onnx-proto';

/**
 * A benchmark-only model, never shipped: a ranking-style network with random weights over one
 * 1,024-float input (`x` [batch, 1024] → `probabilities` [batch, 16]). The input is projected
 * into 4 tokens of 4,096; one feed-forward block (4,096 → 24,576 → 4,096, 201 M weights) runs
 * over every token with the same weights; the tokens are joined and scored.
 *
 * Why this shape: the inference ratios measure the server against the model's own cost, so
 * the model must cost what real models do, i.e. much more than handling the request. Here
 * one item is about 0.8 G multiply-adds (≈ 16 ms on one core of the machine the README names),
 * while a cached answer costs the server about 1 ms: without such a gap no cache can be 10×
 * faster than the model. And a request alone is memory-bound: its 4 tokens use each of the
 * 833 MB of weights only 4 times, so one request takes about as long as reading them
 * (≈ 100 ms), while a batch reuses every weight for all its rows. That is what batching buys
 * a real model on a CPU. The file is written at each run (about 10 s), never committed.
 */
export const BENCH_MODEL = {
  name: 'bench-ffn-218m',
  path: 'bench-ffn-218m/model.onnx',
  input: 'x',
  output: 'probabilities',
  inputSize: 1024,
  tokens: 4,
  width: 4096,
  hidden: 24_576,
  classes: 16,
} as const;

export const BENCH_INPUT_SIZE = BENCH_MODEL.inputSize;

/** What results.json says of the model. */
export const BENCH_MODEL_SUMMARY =
  `${BENCH_MODEL.name}: ${BENCH_MODEL.inputSize} → ${BENCH_MODEL.tokens} tokens × ` +
  `${BENCH_MODEL.width} → FFN ${BENCH_MODEL.width}→${BENCH_MODEL.hidden}→${BENCH_MODEL.width} ` +
  `per token → ${BENCH_MODEL.classes}, 218 M float32 weights, random`;

// ONNX opset 17 needs IR version 8, the newest onnx-proto 8 can write (as scripts/build-models.ts).
const IR_VERSION = 8;
const OPSET = 17;
const FLOAT = onnx.TensorProto.DataType.FLOAT;
const INT64 = onnx.TensorProto.DataType.INT64;

/**
 * Weights from a fixed-seed LCG in [-scale/2, scale/2), so every run benchmarks the same
 * model. The loop is written out (no closure per value): 200 M values take half a
 * second this way and ten times longer through a generator function.
 */
function floatTensor(name: string, dims: number[], seed: number, scale: number): onnx.ITensorProto {
  const values = new Float32Array(dims.reduce((a, b) => a * b, 1));
  let state = seed >>> 0;
  for (let i = 0; i < values.length; i++) {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    values[i] = (state / 2 ** 32 - 0.5) * scale;
  }
  // Float32Array is little-endian on every host Node runs on, as ONNX raw data must be.
  return { name, dims, dataType: FLOAT, rawData: new Uint8Array(values.buffer) };
}

const shape = (name: string, dims: number[]): onnx.ITensorProto => ({
  name,
  dims: [dims.length],
  dataType: INT64,
  int64Data: dims,
});

/** The model's bytes: Gemm (project) → Reshape to tokens → Gemm, Relu, Gemm, Relu → Reshape → Gemm → Softmax. */
export function buildBenchModel(): Uint8Array {
  const { inputSize, tokens, width, hidden, classes } = BENCH_MODEL;
  const he = (fanIn: number) => 2 / Math.sqrt(fanIn);
  const initializer = [
    floatTensor('w_project', [inputSize, tokens * width], 1, he(inputSize)),
    floatTensor('b_project', [tokens * width], 2, 0.1),
    shape('token_shape', [-1, width]),
    floatTensor('w_up', [width, hidden], 3, he(width)),
    floatTensor('b_up', [hidden], 4, 0.1),
    floatTensor('w_down', [hidden, width], 5, he(hidden)),
    floatTensor('b_down', [width], 6, 0.1),
    shape('row_shape', [-1, tokens * width]),
    floatTensor('w_score', [tokens * width, classes], 7, he(tokens * width)),
    floatTensor('b_score', [classes], 8, 0.1),
  ];
  const node = (opType: string, input: string[], output: string): onnx.INodeProto => ({
    opType,
    input,
    output: [output],
  });
  const nodes: onnx.INodeProto[] = [
    node('Gemm', [BENCH_MODEL.input, 'w_project', 'b_project'], 'projected'),
    node('Reshape', ['projected', 'token_shape'], 'tokens'),
    node('Gemm', ['tokens', 'w_up', 'b_up'], 'up'),
    node('Relu', ['up'], 'up_active'),
    node('Gemm', ['up_active', 'w_down', 'b_down'], 'down'),
    node('Relu', ['down'], 'down_active'),
    node('Reshape', ['down_active', 'row_shape'], 'rows'),
    node('Gemm', ['rows', 'w_score', 'b_score'], 'scores'),
    {
      opType: 'Softmax',
      input: ['scores'],
      output: [BENCH_MODEL.output],
      attribute: [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 1 }],
    },
  ];
  const tensor = (name: string, size: number) => ({
    name,
    type: {
      tensorType: {
        elemType: FLOAT,
        shape: { dim: [{ dimParam: 'batch' }, { dimValue: size }] },
      },
    },
  });
  const model = onnx.ModelProto.create({
    irVersion: IR_VERSION,
    opsetImport: [{ domain: '', version: OPSET }],
    producerName: 'context-server/bench/bench-model.ts',
    docString: 'Benchmark-only network with random weights; not a trained model.',
    graph: {
      name: BENCH_MODEL.name,
      node: nodes,
      initializer,
      input: [tensor(BENCH_MODEL.input, inputSize)],
      output: [tensor(BENCH_MODEL.output, classes)],
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

/**
 * A MODEL_DIR for the benchmarked server: copies of the shipped models (with their
 * manifest, so they register at start) plus the benchmark network, which the bench registers
 * itself in the variants it compares.
 */
export async function prepareModelDir(shippedDir: string, dir: string): Promise<string> {
  await cp(shippedDir, dir, { recursive: true });
  const file = path.join(dir, BENCH_MODEL.path);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, buildBenchModel());
  return file;
}

/** A fixed-seed LCG, for the inputs. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    return state / 2 ** 32 - 0.5;
  };
}

/** Deterministic inputs: `count` rows of BENCH_INPUT_SIZE values in [0, 1), 3 decimals. */
export function benchInputs(count: number, seed = 7): number[][] {
  const next = random(seed);
  return Array.from({ length: count }, () =>
    Array.from({ length: BENCH_INPUT_SIZE }, () => Math.round((next() + 0.5) * 1000) / 1000),
  );
}
