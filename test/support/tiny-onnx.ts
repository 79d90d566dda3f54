import { writeFile } from 'node:fs/promises';
import { onnx } from 'onnx-proto';

// Opset 17 needs IR version 8, the newest onnx-proto 8 can write (as scripts/build-models.ts).
const IR_VERSION = 8;
const OPSET = 17;
const FLOAT = onnx.TensorProto.DataType.FLOAT;

/**
 * The smallest useful TENSOR model: `y = x * 2`, input `x` float32 `[batch, 3]` (batch
 * dynamic), output `y` of the same shape. Written as real ONNX so that tests exercise
 * onnxruntime rather than a stand-in.
 */
export function doublerModel(): Uint8Array {
  const two = new Uint8Array(4);
  new DataView(two.buffer).setFloat32(0, 2, true); // ONNX raw data is little-endian
  const tensor = (name: string): onnx.IValueInfoProto => ({
    name,
    type: {
      tensorType: { elemType: FLOAT, shape: { dim: [{ dimParam: 'batch' }, { dimValue: 3 }] } },
    },
  });
  const model = onnx.ModelProto.create({
    irVersion: IR_VERSION,
    opsetImport: [{ domain: '', version: OPSET }],
    producerName: 'context-server/test/support/tiny-onnx.ts',
    graph: {
      name: 'doubler',
      node: [{ opType: 'Mul', input: ['x', 'two'], output: ['y'], name: 'y' }],
      initializer: [{ name: 'two', dims: [], dataType: FLOAT, rawData: two }],
      input: [tensor('x')],
      output: [tensor('y')],
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

/** Writes {@link doublerModel} to `file`. */
export async function writeDoublerModel(file: string): Promise<void> {
  await writeFile(file, doublerModel());
}
