import { readFile } from 'node:fs/promises';
import { type TokenizerFile } from '../types';

/** The word pattern `tokenizer.json` files get when they name none (see {@link TokenizerFile}). */
export const DEFAULT_WORD_PATTERN = "[a-z0-9']+";

/** Text ↔ token ids for one text model, as its `tokenizer.json` describes. */
export interface Tokenizer {
  /** Token ids of `text`; words or characters the vocabulary lacks become `unknownId`. */
  encode(text: string): number[];
  /**
   * Text of `ids`, skipping `padId`: words joined by single spaces, characters concatenated.
   * Throws a RangeError on an id outside the vocabulary.
   */
  decode(ids: readonly number[]): string;
  readonly file: TokenizerFile;
  readonly vocabSize: number;
}

/** Thrown for a `tokenizer.json` that does not follow {@link TokenizerFile}. */
export class TokenizerFileError extends Error {
  override readonly name = 'TokenizerFileError';
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((entry) => typeof entry === 'string');
}

/**
 * Checks that `value` is a usable {@link TokenizerFile} and returns it typed. Keys the
 * interface does not name (e.g. `maxLength`) are kept as they are.
 *
 * @param source Named in error messages, e.g. the file's path.
 * @throws TokenizerFileError naming the first field that is wrong.
 */
export function parseTokenizerFile(value: unknown, source = 'tokenizer'): TokenizerFile {
  const fail = (message: string): never => {
    throw new TokenizerFileError(`Invalid tokenizer ${source}: ${message}`);
  };
  if (!isRecord(value)) {
    return fail('expected a JSON object');
  }
  if (value.type !== 'word' && value.type !== 'char') {
    fail(`"type" must be "word" or "char", got ${JSON.stringify(value.type)}`);
  }
  const { vocab } = value;
  if (!isStringArray(vocab) || vocab.length === 0) {
    return fail('"vocab" must be a non-empty array of strings');
  }
  // A repeated entry would make encode and the model disagree about which id a token has.
  const seen = new Set<string>();
  for (const [id, token] of vocab.entries()) {
    if (seen.has(token)) {
      fail(`"vocab" repeats ${JSON.stringify(token)} (again at id ${id})`);
    }
    seen.add(token);
  }
  if (typeof value.lowercase !== 'boolean') {
    fail('"lowercase" must be a boolean');
  }
  if (value.pattern !== undefined) {
    if (typeof value.pattern !== 'string' || value.pattern === '') {
      fail('"pattern" must be a non-empty string');
    }
    try {
      new RegExp(value.pattern as string, 'g');
    } catch (error) {
      fail(`"pattern" is not a valid regular expression (${(error as Error).message})`);
    }
  }
  const checkId = (key: string, required: boolean): void => {
    const id = value[key];
    if (id === undefined && !required) {
      return;
    }
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= vocab.length) {
      fail(`"${key}" must be an integer id in [0, ${vocab.length - 1}], got ${JSON.stringify(id)}`);
    }
  };
  checkId('unknownId', true);
  checkId('padId', true);
  checkId('endId', false);
  if (value.labels !== undefined && (!isStringArray(value.labels) || value.labels.length === 0)) {
    fail('"labels" must be a non-empty array of strings');
  }
  const positiveInteger = (key: string): void => {
    const n = value[key];
    if (n !== undefined && (typeof n !== 'number' || !Number.isInteger(n) || n < 1)) {
      fail(`"${key}" must be a positive integer, got ${JSON.stringify(n)}`);
    }
  };
  positiveInteger('contextLength');
  positiveInteger('maxLength');
  return value as unknown as TokenizerFile;
}

/**
 * A tokenizer over a validated copy of `file`.
 *
 * @throws TokenizerFileError when `file` does not follow {@link TokenizerFile}.
 */
export function createTokenizer(file: TokenizerFile): Tokenizer {
  const checked = parseTokenizerFile(file);
  const { vocab, unknownId, padId, lowercase } = checked;
  // Pad and unknown are never looked up, so no text can smuggle in the pad id.
  const ids = new Map<string, number>();
  for (const [id, token] of vocab.entries()) {
    if (id !== padId && id !== unknownId) {
      ids.set(token, id);
    }
  }
  const pattern = new RegExp(checked.pattern ?? DEFAULT_WORD_PATTERN, 'g');
  const pieces =
    checked.type === 'word'
      ? (text: string): string[] => Array.from(text.matchAll(pattern), (match) => match[0])
      : // Code points, not UTF-16 units: a vocabulary entry is one visible character.
        (text: string): string[] => Array.from(text);
  const separator = checked.type === 'word' ? ' ' : '';

  return {
    file: checked,
    vocabSize: vocab.length,
    encode(text) {
      const pieceList = pieces(lowercase ? text.toLowerCase() : text);
      return pieceList.filter((piece) => piece !== '').map((piece) => ids.get(piece) ?? unknownId);
    },
    decode(tokenIds) {
      const out: string[] = [];
      for (const id of tokenIds) {
        if (!Number.isInteger(id) || id < 0 || id >= vocab.length) {
          throw new RangeError(`Token id ${id} is outside the vocabulary [0, ${vocab.length - 1}]`);
        }
        if (id !== padId) {
          out.push(vocab[id]);
        }
      }
      return out.join(separator);
    },
  };
}

/**
 * Reads, validates and wraps a `tokenizer.json`.
 *
 * @throws TokenizerFileError when the file is not JSON or not a {@link TokenizerFile};
 * the file system's error when it cannot be read.
 */
export async function loadTokenizer(jsonPath: string): Promise<Tokenizer> {
  const text = await readFile(jsonPath, 'utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new TokenizerFileError(
      `Invalid tokenizer ${jsonPath}: not JSON (${(error as Error).message})`,
    );
  }
  return createTokenizer(parseTokenizerFile(value, jsonPath));
}
