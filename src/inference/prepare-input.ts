/**
 * Step 5 of `infer` (ARCHITECTURE.md, "Inference"): the text a generative model continues,
 * built from the prompt, the last turns of history and the preferences that matter to it.
 */

export interface Turn {
  readonly input: unknown;
  readonly output: unknown;
}

export interface PromptArgs {
  readonly prompt: string;
  /** Oldest first. */
  readonly history: readonly Turn[];
  readonly preferences: Readonly<Record<string, unknown>>;
  /** How many of the most recent turns to include. */
  readonly maxTurns: number;
  /** The longest prompt, in UTF-16 code units (JavaScript string length). */
  readonly maxChars: number;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * A turn's input or output as text: a string as is, `{ prompt }` or `{ text }` (what `infer`
 * takes and what a generation returns) as that string, nothing as '', anything else as JSON.
 */
export function textOf(value: unknown): string {
  if (typeof value === 'string') {
    return value;
  }
  if (value === null || value === undefined) {
    return '';
  }
  if (isObject(value)) {
    if (typeof value.prompt === 'string') {
      return value.prompt;
    }
    if (typeof value.text === 'string') {
      return value.text;
    }
  }
  return JSON.stringify(value) ?? String(value);
}

const LANGUAGE_NAMES = new Intl.DisplayNames(['en'], { type: 'language', fallback: 'none' });

/** "fr" → "French"; free text ("Brazilian Portuguese") is kept, on one line. */
function languageName(value: unknown): string | null {
  if (typeof value !== 'string') {
    return null;
  }
  const language = value.replace(/\s+/g, ' ').trim().slice(0, 64);
  if (language === '') {
    return null;
  }
  try {
    return LANGUAGE_NAMES.of(language) ?? language;
  } catch {
    // Not a BCP 47 tag: preferences are free-form, so use the words the user wrote.
    return language;
  }
}

/** A cut at a code-unit offset may leave half of a surrogate pair at the start. */
function tail(text: string, maxChars: number): string {
  const cut = text.slice(text.length - maxChars);
  const first = cut.charCodeAt(0);
  return first >= 0xdc00 && first <= 0xdfff ? cut.slice(1) : cut;
}

/**
 * The prompt: "Respond in <language>." when the preferences name one, then the last
 * `maxTurns` turns oldest first as "User: …\nAssistant: …", then "User: <prompt>\nAssistant:".
 * When that is longer than `maxChars`, the oldest turns go first, and then the text keeps its
 * end: a short-context model reads only the last tokens, and the newest text matters most.
 */
export function buildPrompt(args: PromptArgs): string {
  if (args.maxChars <= 0) {
    return '';
  }
  const language = languageName(args.preferences.language);
  const header = language ? [`Respond in ${language}.`] : [];
  const turnCount = Math.max(0, Math.floor(args.maxTurns));
  const turns = (turnCount === 0 ? [] : args.history.slice(-turnCount)).map(
    (turn) => `User: ${textOf(turn.input)}\nAssistant: ${textOf(turn.output)}`,
  );
  const current = `User: ${args.prompt}\nAssistant:`;

  let prompt = [...header, ...turns, current].join('\n');
  while (prompt.length > args.maxChars && turns.length > 0) {
    turns.shift();
    prompt = [...header, ...turns, current].join('\n');
  }
  return prompt.length > args.maxChars ? tail(prompt, args.maxChars) : prompt;
}
