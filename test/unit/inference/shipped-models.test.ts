import { access, readFile } from 'node:fs/promises';
import path from 'node:path';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTokenizer, type Tokenizer } from '../../../src/inference/tokenizers/tokenizer';
import { type ShippedModel } from '../../../src/inference/types';

// The models are committed build outputs of scripts/build-models.ts (`npm run build:models`).
const MODELS_DIR = path.resolve(__dirname, '..', '..', '..', 'models');

interface Loaded {
  readonly session: InferenceSession;
  readonly tokenizer: Tokenizer;
}

async function loadModel(name: string): Promise<Loaded> {
  const dir = path.join(MODELS_DIR, name);
  return {
    session: await InferenceSession.create(path.join(dir, 'model.onnx')),
    tokenizer: await loadTokenizer(path.join(dir, 'tokenizer.json')),
  };
}

/** Runs `rows` as one batch, right-padded with padId 0; returns one output row per input row. */
async function run(
  session: InferenceSession,
  rows: readonly (readonly number[])[],
  width = Math.max(1, ...rows.map((row) => row.length)),
): Promise<number[][]> {
  const ids = new BigInt64Array(rows.length * width);
  rows.forEach((row, r) => row.forEach((id, c) => (ids[r * width + c] = BigInt(id))));
  const input = new Tensor('int64', ids, [rows.length, width]);
  const result = await session.run({ [session.inputNames[0]]: input });
  const output = result[session.outputNames[0]];
  const columns = output.dims[1];
  expect(output.dims).toEqual([rows.length, columns]);
  const data = Array.from(output.data as Float32Array);
  return rows.map((_, r) => data.slice(r * columns, (r + 1) * columns));
}

function expectRowsClose(actual: number[][], expected: number[][]): void {
  expect(actual).toHaveLength(expected.length);
  actual.forEach((row, r) =>
    row.forEach((value, c) => expect(Math.abs(value - expected[r][c])).toBeLessThan(1e-6)),
  );
}

async function batchEqualsSingles(loaded: Loaded, rows: number[][]): Promise<void> {
  const batch = await run(loaded.session, rows);
  const singles = await Promise.all(rows.map(async (row) => (await run(loaded.session, [row]))[0]));
  expectRowsClose(batch, singles);
}

describe('models/manifest.json', () => {
  it('lists the three shipped models with files that exist and tokenizers that load', async () => {
    const manifest = JSON.parse(
      await readFile(path.join(MODELS_DIR, 'manifest.json'), 'utf8'),
    ) as ShippedModel[];
    expect(manifest.map((entry) => entry.name)).toEqual([
      'sentiment-afinn',
      'spam-classifier',
      'moby-char-trigram',
    ]);
    for (const entry of manifest) {
      expect(entry.version).toBe('1');
      expect(entry.cacheable).toBe(true);
      expect(entry.source).toMatch(/^npm /);
      const modelFile = path.join(MODELS_DIR, entry.path);
      await access(modelFile);
      const tokenizer = await loadTokenizer(path.join(path.dirname(modelFile), 'tokenizer.json'));
      if (entry.task === 'TEXT_CLASSIFICATION') {
        expect(tokenizer.file.labels).toHaveLength(2);
        expect(entry.defaultParameters).toEqual({});
      } else {
        expect(tokenizer.file.contextLength).toBe(2);
        expect(entry.defaultParameters).toMatchObject({ temperature: 0.8, max_tokens: 200 });
      }
    }
  });
});

describe('sentiment-afinn', () => {
  let model: Loaded;
  beforeAll(async () => {
    model = await loadModel('sentiment-afinn');
  });
  afterAll(async () => {
    await model.session.release();
  });

  it('reads token_ids [batch, seq] and gives probabilities [batch, 2] as negative, positive', () => {
    expect(model.session.inputNames).toEqual(['token_ids']);
    expect(model.session.outputNames).toEqual(['probabilities']);
    expect(model.tokenizer.file.labels).toEqual(['negative', 'positive']);
  });

  it('calls a happy sentence positive and a sad one negative', async () => {
    const [happy, sad, neutral] = await run(model.session, [
      model.tokenizer.encode('I love this wonderful day'),
      model.tokenizer.encode('this is terrible, awful and sad'),
      model.tokenizer.encode('the table has four legs'),
    ]);
    expect(happy[1]).toBeGreaterThan(0.5);
    expect(sad[0]).toBeGreaterThan(0.5);
    expect(neutral[0]).toBeCloseTo(0.5, 6);
    expect(happy[0] + happy[1]).toBeCloseTo(1, 6);
  });

  it('gives a batch of 3 the same rows as 3 single runs', async () => {
    await batchEqualsSingles(model, [
      model.tokenizer.encode('good'),
      model.tokenizer.encode('a horrible, dreadful, ugly mess'),
      model.tokenizer.encode('fine thanks'),
    ]);
  });
});

describe('spam-classifier', () => {
  let model: Loaded;
  beforeAll(async () => {
    model = await loadModel('spam-classifier');
  });
  afterAll(async () => {
    await model.session.release();
  });

  it('reads token_ids and gives probabilities as ham, spam, with metrics from held-out mail', async () => {
    expect(model.session.inputNames).toEqual(['token_ids']);
    expect(model.session.outputNames).toEqual(['probabilities']);
    expect(model.tokenizer.file.labels).toEqual(['ham', 'spam']);
    const manifest = JSON.parse(
      await readFile(path.join(MODELS_DIR, 'manifest.json'), 'utf8'),
    ) as ShippedModel[];
    const metrics = manifest.find((entry) => entry.name === 'spam-classifier')?.metrics;
    expect(metrics?.heldOutAccuracy).toBeGreaterThanOrEqual(0.93);
    expect(metrics?.heldOutSize).toBeGreaterThan(1000);
  });

  it('flags an obvious spam as spam and a plain work mail as ham', async () => {
    const [spam, ham] = await run(model.session, [
      model.tokenizer.encode(
        'Congratulations! You have won a FREE prize, click here to claim your cash now',
      ),
      model.tokenizer.encode(
        'Hi Tom, the meeting about the budget moved to Thursday at 10. Please bring the ' +
          'draft report and the figures from last week. Thanks, Anna',
      ),
    ]);
    expect(spam[1]).toBeGreaterThan(0.5);
    expect(ham[0]).toBeGreaterThan(0.5);
  });

  it('reads only the first 512 tokens, as it was trained', async () => {
    const work = model.tokenizer.encode('the meeting is moved to thursday please review the patch');
    const first = Array.from({ length: 512 }, (_, i) => work[i % work.length]);
    const spammy = model.tokenizer.encode('click here free cash prize money order now');
    const tail = Array.from({ length: 300 }, (_, i) => spammy[i % spammy.length]);
    const [truncated, long] = await run(model.session, [first, [...first, ...tail]]);
    expectRowsClose([long], [truncated]);
  });

  it('gives a batch of 3 the same rows as 3 single runs', async () => {
    await batchEqualsSingles(model, [
      model.tokenizer.encode('cheap meds online, order now'),
      model.tokenizer.encode('the patch looks good to me, merging it into the release branch'),
      model.tokenizer.encode('lunch?'),
    ]);
  });
});

describe('moby-char-trigram', () => {
  let model: Loaded;
  beforeAll(async () => {
    model = await loadModel('moby-char-trigram');
  });
  afterAll(async () => {
    await model.session.release();
  });

  it('reads context_ids [batch, 2] and gives logits [batch, vocab]', async () => {
    expect(model.session.inputNames).toEqual(['context_ids']);
    expect(model.session.outputNames).toEqual(['logits']);
    const [row] = await run(model.session, [model.tokenizer.encode('wh')]);
    expect(row).toHaveLength(model.tokenizer.vocabSize);
  });

  it('puts most of the mass after "th" on "e", and none on pad or unknown', async () => {
    const [row] = await run(model.session, [model.tokenizer.encode('th')]);
    const probabilities = row.map(Math.exp);
    const e = model.tokenizer.encode('e')[0];
    expect(probabilities.indexOf(Math.max(...probabilities))).toBe(e);
    expect(probabilities[e]).toBeGreaterThan(0.5);
    expect(probabilities.reduce((sum, p) => sum + p, 0)).toBeCloseTo(1, 4);
    expect(probabilities[model.tokenizer.file.padId]).toBe(0);
    expect(probabilities[model.tokenizer.file.unknownId]).toBe(0);
  });

  it('gives a batch of 3 the same rows as 3 single runs', async () => {
    const { padId } = model.tokenizer.file;
    await batchEqualsSingles(model, [
      model.tokenizer.encode('qu'),
      model.tokenizer.encode('e '),
      [padId, ...model.tokenizer.encode('a')],
    ]);
  });
});
