import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTokenizer,
  loadTokenizer,
  TokenizerFileError,
} from '../../../src/inference/tokenizers/tokenizer';
import { type TokenizerFile } from '../../../src/inference/types';

const words: TokenizerFile = {
  type: 'word',
  vocab: ['<pad>', '<unk>', 'the', 'cat', 'sat', "don't", 'on', 'mat'],
  lowercase: true,
  unknownId: 1,
  padId: 0,
};

const chars: TokenizerFile = {
  type: 'char',
  vocab: ['<pad>', '<unk>', ' ', 'a', 'b', 'c', 'é', '—'],
  lowercase: false,
  unknownId: 1,
  padId: 0,
  contextLength: 2,
};

describe('word tokenizer', () => {
  const tokenizer = createTokenizer(words);

  it('round-trips known words, joined by single spaces', () => {
    const ids = tokenizer.encode("The cat sat on the mat, don't!");
    expect(ids).toEqual([2, 3, 4, 6, 2, 7, 5]);
    expect(tokenizer.decode(ids)).toBe("the cat sat on the mat don't");
    expect(tokenizer.vocabSize).toBe(8);
  });

  it('maps words outside the vocabulary to unknownId', () => {
    expect(tokenizer.encode('the dog sat')).toEqual([2, 1, 4]);
    expect(tokenizer.decode([2, 1, 4])).toBe('the <unk> sat');
  });

  it('lowercases only when the file says so', () => {
    const cased = createTokenizer({ ...words, lowercase: false, pattern: "[A-Za-z']+" });
    expect(cased.encode('The cat')).toEqual([1, 3]);
    expect(tokenizer.encode('THE CAT')).toEqual([2, 3]);
  });

  it("splits with the default pattern [a-z0-9']+ unless the file names one", () => {
    expect(tokenizer.encode('cat42 sat')).toEqual([1, 4]);
    const dashed = createTokenizer({
      ...words,
      vocab: [...words.vocab, 'sat-on'],
      pattern: '[a-z-]+',
    });
    expect(dashed.encode('sat-on the mat')).toEqual([8, 2, 7]);
  });

  it('never yields the pad id from text, even when the pattern matches "<pad>"', () => {
    const greedy = createTokenizer({ ...words, pattern: '\\S+' });
    expect(greedy.encode('<pad> cat')).toEqual([1, 3]);
  });

  it('skips pad when decoding and refuses ids outside the vocabulary', () => {
    expect(tokenizer.decode([0, 3, 0, 4, 0])).toBe('cat sat');
    expect(() => tokenizer.decode([8])).toThrow(RangeError);
    expect(() => tokenizer.decode([-1])).toThrow(/outside the vocabulary/);
    expect(() => tokenizer.decode([1.5])).toThrow(RangeError);
  });

  it('encodes empty text or text without words as no tokens', () => {
    expect(tokenizer.encode('')).toEqual([]);
    expect(tokenizer.encode('!!! ...')).toEqual([]);
  });
});

describe('char tokenizer', () => {
  const tokenizer = createTokenizer(chars);

  it('round-trips characters, concatenated', () => {
    const ids = tokenizer.encode('ab cé—a');
    expect(ids).toEqual([3, 4, 2, 5, 6, 7, 3]);
    expect(tokenizer.decode(ids)).toBe('ab cé—a');
  });

  it('maps unknown characters, including astral ones, to one unknownId each', () => {
    expect(tokenizer.encode('aXb😀')).toEqual([3, 1, 4, 1]);
  });

  it('keeps case unless lowercase is set', () => {
    expect(tokenizer.encode('A')).toEqual([1]);
    expect(createTokenizer({ ...chars, lowercase: true }).encode('A')).toEqual([3]);
  });

  it('skips pad when decoding', () => {
    expect(tokenizer.decode([0, 0, 3, 4])).toBe('ab');
  });
});

describe('loadTokenizer', () => {
  let dir: string;
  let written = 0;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'tokenizer-test-'));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function load(content: unknown): Promise<unknown> {
    const file = path.join(dir, `tokenizer-${(written += 1)}.json`);
    await writeFile(file, typeof content === 'string' ? content : JSON.stringify(content));
    return loadTokenizer(file);
  }

  it('loads a valid file and keeps extra keys such as maxLength', async () => {
    const tokenizer = (await load({ ...words, maxLength: 512 })) as Awaited<
      ReturnType<typeof loadTokenizer>
    >;
    expect(tokenizer.encode('the cat')).toEqual([2, 3]);
    expect((tokenizer.file as unknown as { maxLength: number }).maxLength).toBe(512);
  });

  it.each([
    ['text that is not JSON', '{ "type": ', /not JSON/],
    ['a JSON array', '[]', /expected a JSON object/],
    ['an unknown type', { ...words, type: 'bpe' }, /"type" must be "word" or "char"/],
    ['an empty vocabulary', { ...words, vocab: [] }, /"vocab" must be a non-empty array/],
    ['a vocabulary of numbers', { ...words, vocab: [1, 2] }, /"vocab" must be a non-empty array/],
    [
      'a repeated vocabulary entry',
      { ...words, vocab: ['<pad>', '<unk>', 'a', 'a'] },
      /repeats "a"/,
    ],
    [
      'a missing lowercase flag',
      { ...words, lowercase: undefined },
      /"lowercase" must be a boolean/,
    ],
    ['an invalid pattern', { ...words, pattern: '[a-z' }, /"pattern" is not a valid regular/],
    [
      'an unknownId past the vocabulary',
      { ...words, unknownId: 8 },
      /"unknownId" must be an integer id in \[0, 7\]/,
    ],
    ['a negative padId', { ...words, padId: -1 }, /"padId" must be an integer id/],
    ['a fractional endId', { ...words, endId: 1.5 }, /"endId" must be an integer id/],
    ['empty labels', { ...words, labels: [] }, /"labels" must be a non-empty array/],
    [
      'a zero contextLength',
      { ...chars, contextLength: 0 },
      /"contextLength" must be a positive integer/,
    ],
  ])('rejects %s with a message naming the file and the field', async (_, content, message) => {
    const attempt = load(content);
    await expect(attempt).rejects.toThrow(TokenizerFileError);
    await expect(attempt).rejects.toThrow(message);
    await expect(attempt).rejects.toThrow(dir);
  });

  it('rejects an invalid file passed to createTokenizer directly', () => {
    expect(() => createTokenizer({ ...words, padId: 99 })).toThrow(TokenizerFileError);
  });

  it('reports a missing file with the file system error', async () => {
    await expect(loadTokenizer(path.join(dir, 'missing.json'))).rejects.toThrow(/ENOENT/);
  });
});
