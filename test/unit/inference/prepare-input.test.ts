import { describe, expect, it } from 'vitest';
import { type Turn, buildPrompt, textOf } from '../../../src/inference/prepare-input';

const turns: Turn[] = [
  { input: 'first question', output: 'first answer' },
  { input: { prompt: 'second question' }, output: { text: 'second answer' } },
  { input: 'third question', output: 'third answer' },
];

const build = (overrides: Partial<Parameters<typeof buildPrompt>[0]> = {}) =>
  buildPrompt({
    prompt: 'Call me Ishmael.',
    history: [],
    preferences: {},
    maxTurns: 5,
    maxChars: 10_000,
    ...overrides,
  });

describe('textOf', () => {
  it('keeps a string as it is', () => {
    expect(textOf('plain text')).toBe('plain text');
  });

  it("reads an infer input's prompt and a generation's text", () => {
    expect(textOf({ prompt: 'the prompt', other: 1 })).toBe('the prompt');
    expect(textOf({ text: 'generated', tokens: 3 })).toBe('generated');
  });

  it('writes anything else as JSON, and nothing as an empty string', () => {
    expect(textOf({ label: 'spam', score: 0.9 })).toBe('{"label":"spam","score":0.9}');
    expect(textOf([1, 2])).toBe('[1,2]');
    expect(textOf(42)).toBe('42');
    expect(textOf(null)).toBe('');
    expect(textOf(undefined)).toBe('');
  });
});

describe('buildPrompt', () => {
  it('asks the model to continue after the prompt when there is no history', () => {
    expect(build()).toBe('User: Call me Ishmael.\nAssistant:');
  });

  it('puts the history before the prompt, oldest first, as user and assistant lines', () => {
    expect(build({ history: turns })).toBe(
      [
        'User: first question',
        'Assistant: first answer',
        'User: second question',
        'Assistant: second answer',
        'User: third question',
        'Assistant: third answer',
        'User: Call me Ishmael.',
        'Assistant:',
      ].join('\n'),
    );
  });

  it('keeps only the last maxTurns turns', () => {
    const prompt = build({ history: turns, maxTurns: 2 });
    expect(prompt).not.toContain('first');
    expect(prompt.startsWith('User: second question\n')).toBe(true);
    expect(build({ history: turns, maxTurns: 0 })).toBe('User: Call me Ishmael.\nAssistant:');
  });

  it('opens with an instruction to respond in the preferred language, named in English', () => {
    expect(build({ preferences: { language: 'fr' } })).toBe(
      'Respond in French.\nUser: Call me Ishmael.\nAssistant:',
    );
    expect(build({ preferences: { language: 'Brazilian  Portuguese' } }).split('\n')[0]).toBe(
      'Respond in Brazilian Portuguese.',
    );
  });

  it('ignores a language preference that is not text, and other preferences', () => {
    expect(build({ preferences: { language: 7, formality: 'formal', creativity: 'high' } })).toBe(
      'User: Call me Ishmael.\nAssistant:',
    );
  });

  it('drops the oldest turns first when the prompt is longer than maxChars', () => {
    const full = build({ history: turns, preferences: { language: 'fr' } });
    const prompt = build({
      history: turns,
      preferences: { language: 'fr' },
      maxChars: full.length - 1,
    });
    expect(prompt.length).toBeLessThan(full.length);
    expect(prompt.startsWith('Respond in French.\nUser: second question\n')).toBe(true);
    expect(prompt.endsWith('User: Call me Ishmael.\nAssistant:')).toBe(true);
  });

  it('keeps the end of the text when even the prompt alone is longer than maxChars', () => {
    const prompt = build({ prompt: 'a'.repeat(100) + ' the end', history: turns, maxChars: 30 });
    expect(prompt).toHaveLength(30);
    expect(prompt.endsWith(' the end\nAssistant:')).toBe(true);
  });

  it('never starts with half of a character outside the basic plane', () => {
    const prompt = build({ prompt: '🐋'.repeat(20), maxChars: 22 });
    expect(prompt.endsWith('\nAssistant:')).toBe(true);
    expect(prompt.length).toBeLessThanOrEqual(22);
    expect(prompt.startsWith('🐋')).toBe(true);
  });

  it('gives an empty prompt when maxChars is 0', () => {
    expect(build({ maxChars: 0 })).toBe('');
  });
});
