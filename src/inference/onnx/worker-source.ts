/**
 * The body of an inference worker thread, as source text: `new Worker(WORKER_SOURCE,
 * { eval: true })` runs the same code under node, tsx and vitest, with no build step for a
 * separate worker file. It holds one onnxruntime session per model and answers `load`,
 * `run` and `release` messages; tensors travel as transferred ArrayBuffers.
 *
 * `session.run` is synchronous native work (deferred by setImmediate): in a worker it no
 * longer stalls the GraphQL event loop.
 */
export const WORKER_SOURCE = String.raw`
const { parentPort, workerData } = require('node:worker_threads');
const ort = require(workerData.ortPath);
const sessions = new Map();

const ARRAYS = {
  float32: Float32Array, float64: Float64Array, int32: Int32Array, int64: BigInt64Array,
  bool: Uint8Array, uint8: Uint8Array, int8: Int8Array,
};

function specsOf(metadata) {
  return metadata.map((m) => ({
    name: m.name,
    type: m.isTensor ? String(m.type) : 'non-tensor',
    dims: m.isTensor ? m.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : -1)) : [],
  }));
}

const fs = require('node:fs');
const nodePath = require('node:path');

// The CUDA provider ships as shared libraries beside the binding only when installed (the
// npm package skips them offline); asking for CUDA without them fails deep in native code.
function cudaInstalled() {
  const dir = nodePath.join(nodePath.dirname(workerData.ortPath), '..', 'bin', 'napi-v6', process.platform, process.arch);
  return fs.existsSync(nodePath.join(dir, 'libonnxruntime_providers_cuda.so'));
}

async function create(path, device) {
  const options = { graphOptimizationLevel: 'all', extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } } };
  if (workerData.intraOpThreads > 0) {
    options.intraOpNumThreads = workerData.intraOpThreads;
  }
  if (device === 'auto' && !cudaInstalled()) {
    return { session: await ort.InferenceSession.create(path, { ...options, executionProviders: ['cpu'] }), provider: 'cpu', fallback: 'CUDA provider libraries are not installed' };
  }
  if (device === 'cpu') {
    return { session: await ort.InferenceSession.create(path, { ...options, executionProviders: ['cpu'] }), provider: 'cpu' };
  }
  try {
    // onnxruntime-node throws at create when the CUDA provider libraries are missing.
    return { session: await ort.InferenceSession.create(path, { ...options, executionProviders: ['cuda', 'cpu'] }), provider: 'cuda' };
  } catch (error) {
    if (device === 'cuda') {
      throw error;
    }
    return { session: await ort.InferenceSession.create(path, { ...options, executionProviders: ['cpu'] }), provider: 'cpu', fallback: String(error && error.message || error) };
  }
}

async function handle(message) {
  if (message.op === 'load') {
    const existing = sessions.get(message.key);
    if (existing) {
      return { inputs: existing.inputs, outputs: existing.outputs, provider: existing.provider };
    }
    const { session, provider, fallback } = await create(message.path, message.device);
    const entry = { session, provider, inputs: specsOf(session.inputMetadata), outputs: specsOf(session.outputMetadata) };
    sessions.set(message.key, entry);
    return { inputs: entry.inputs, outputs: entry.outputs, provider, fallback };
  }
  if (message.op === 'run') {
    const entry = sessions.get(message.key);
    if (!entry) {
      throw new Error('model not loaded: ' + message.key);
    }
    const feeds = {};
    for (const [name, t] of Object.entries(message.feeds)) {
      const data = new ARRAYS[t.type](t.buffer, t.byteOffset, t.length);
      feeds[name] = new ort.Tensor(t.type, t.type === 'bool' ? Uint8Array.from(data) : data, t.dims);
    }
    const results = await entry.session.run(feeds);
    const outputs = {};
    const transfer = [];
    for (const [name, tensor] of Object.entries(results)) {
      const data = tensor.data;
      const copy = data.slice();
      outputs[name] = { type: tensor.type, dims: Array.from(tensor.dims), buffer: copy.buffer, byteOffset: 0, length: copy.length };
      transfer.push(copy.buffer);
    }
    return { outputs, transfer };
  }
  if (message.op === 'release') {
    const entry = sessions.get(message.key);
    sessions.delete(message.key);
    if (entry) {
      await entry.session.release();
    }
    return {};
  }
  if (message.op === 'close') {
    // Sessions released here, on the worker's own thread: a worker terminated with sessions
    // alive can abort the whole process in onnxruntime's native teardown.
    await Promise.all([...sessions.values()].map((entry) => entry.session.release()));
    sessions.clear();
    return { close: true };
  }
  throw new Error('unknown op ' + message.op);
}

parentPort.on('message', (message) => {
  handle(message).then(
    (result) => {
      const transfer = result.transfer || [];
      delete result.transfer;
      parentPort.postMessage({ id: message.id, ok: true, result }, transfer);
      if (result.close) {
        parentPort.close(); // nothing keeps the thread alive now: it exits with code 0
      }
    },
    (error) => parentPort.postMessage({ id: message.id, ok: false, error: String(error && error.message || error) }),
  );
});
`;
