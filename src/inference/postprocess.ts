/**
 * Step 9 of `infer` (ARCHITECTURE.md, "Inference"): the user's `formality` preference applied
 * to generated English text.
 */

/**
 * Contraction → expansion. Where a contraction has two readings ("it's" = it is / it has,
 * "I'd" = I would / I had) the commoner one is used; rule-based rewriting cannot do better.
 */
const CONTRACTIONS: ReadonlyArray<readonly [string, string]> = [
  ["can't", 'cannot'],
  ["won't", 'will not'],
  ["shan't", 'shall not'],
  ["don't", 'do not'],
  ["doesn't", 'does not'],
  ["didn't", 'did not'],
  ["isn't", 'is not'],
  ["aren't", 'are not'],
  ["wasn't", 'was not'],
  ["weren't", 'were not'],
  ["haven't", 'have not'],
  ["hasn't", 'has not'],
  ["hadn't", 'had not'],
  ["wouldn't", 'would not'],
  ["shouldn't", 'should not'],
  ["couldn't", 'could not'],
  ["mustn't", 'must not'],
  ["needn't", 'need not'],
  ["I'm", 'I am'],
  ["I've", 'I have'],
  ["I'll", 'I will'],
  ["I'd", 'I would'],
  ["you're", 'you are'],
  ["you've", 'you have'],
  ["you'll", 'you will'],
  ["you'd", 'you would'],
  ["we're", 'we are'],
  ["we've", 'we have'],
  ["we'll", 'we will'],
  ["we'd", 'we would'],
  ["they're", 'they are'],
  ["they've", 'they have'],
  ["they'll", 'they will'],
  ["they'd", 'they would'],
  ["he's", 'he is'],
  ["she's", 'she is'],
  ["it's", 'it is'],
  ["he'll", 'he will'],
  ["she'll", 'she will'],
  ["it'll", 'it will'],
  ["that's", 'that is'],
  ["there's", 'there is'],
  ["here's", 'here is'],
  ["what's", 'what is'],
  ["who's", 'who is'],
  ["where's", 'where is'],
  ["how's", 'how is'],
  ["let's", 'let us'],
];

/**
 * Expansion → contraction for casual text. Narrower than the list above on purpose: "let us
 * know" is not "let's know", and "I have a dog" is not "I've a dog". The pronoun forms are
 * only contracted before another word, since "I know where it is." cannot end in "it's".
 */
const NEGATIONS = CONTRACTIONS.filter(([, long]) => long.endsWith(' not') || long === 'cannot');
const PRONOUN_FORMS = CONTRACTIONS.filter(
  ([short]) => /'(?:m|re|ll)$/.test(short) || /^(?:he|she|it|that|there|what|who)'s$/i.test(short),
);

const WORD_CHAR = String.raw`[\p{L}\p{N}]`;

/** "don't" also matches "Don’t" (a typographic apostrophe) and "DON'T". */
function pattern(phrase: string, beforeWord: boolean): RegExp {
  const source = phrase
    .split(/(')/)
    .map((part) => (part === "'" ? "['’]" : part.replace(/ /g, String.raw`\s+`)))
    .join('');
  const after = beforeWord ? String.raw`(?=\s+[\p{L}\p{N}])` : `(?!${WORD_CHAR})`;
  return new RegExp(`(?<!${WORD_CHAR})${source}${after}`, 'giu');
}

/** Gives `replacement` the case of `matched`: ALL CAPS, Capitalised or as written. */
function matchCase(matched: string, replacement: string): string {
  const letters = matched.replace(/[^\p{L}]/gu, '');
  if (letters.length > 1 && letters === letters.toUpperCase()) {
    return replacement.toUpperCase();
  }
  const first = matched.charAt(0);
  if (first !== first.toLowerCase()) {
    return replacement.charAt(0).toUpperCase() + replacement.slice(1);
  }
  return replacement;
}

const EXPANSIONS = CONTRACTIONS.map(([short, long]) => [pattern(short, false), long] as const);
const CONTRACTING = [
  ...NEGATIONS.map(([short, long]) => [pattern(long, false), short] as const),
  ...PRONOUN_FORMS.map(([short, long]) => [pattern(long, true), short] as const),
];

const collapseWhitespace = (text: string): string => text.replace(/\s+/g, ' ').trim();

function rewrite(text: string, rules: ReadonlyArray<readonly [RegExp, string]>): string {
  return rules.reduce(
    (result, [regex, replacement]) =>
      result.replace(regex, (matched) => matchCase(matched, replacement)),
    text,
  );
}

function formal(text: string): string {
  const expanded = collapseWhitespace(rewrite(text, EXPANSIONS));
  if (!/[\p{L}\p{N}]/u.test(expanded)) {
    return expanded;
  }
  const capitalised = expanded.replace(
    /(^|[.!?]["'”’)\]]*\s+)(["'“‘(]*)(\p{Ll})/gu,
    (_, before: string, open: string, letter: string) => before + open + letter.toUpperCase(),
  );
  if (/[.!?…]["'”’)\]]*$/u.test(capitalised)) {
    return capitalised;
  }
  // A generation cut off by max_tokens often stops on a comma or a dash.
  return `${capitalised.replace(/[\s,;:\-–—]+$/u, '')}.`;
}

function casual(text: string): string {
  return collapseWhitespace(rewrite(text, CONTRACTING));
}

/**
 * `"formal"`: contractions expanded, sentences capitalised, whitespace collapsed, a final
 * full stop when the text has no terminal punctuation. `"casual"`: the common expansions
 * contracted, whitespace collapsed. Any other value (preferences are free-form): unchanged.
 */
export function applyFormality(text: string, formality: unknown): string {
  const style = typeof formality === 'string' ? formality.trim().toLowerCase() : '';
  if (style === 'formal') {
    return formal(text);
  }
  if (style === 'casual') {
    return casual(text);
  }
  return text;
}
