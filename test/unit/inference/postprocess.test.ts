import { describe, expect, it } from 'vitest';
import { applyFormality } from '../../../src/inference/postprocess';

describe('applyFormality', () => {
  describe('formal', () => {
    it('expands common contractions', () => {
      expect(
        applyFormality(
          "I don't think it's late, you're right that we can't stay and they won't wait.",
          'formal',
        ),
      ).toBe(
        'I do not think it is late, you are right that we cannot stay and they will not wait.',
      );
      expect(
        applyFormality(
          "I'm sure I've seen it. I'll say they're here, we're not. It isn't, they aren't, he wasn't, she doesn't, we didn't.",
          'formal',
        ),
      ).toBe(
        'I am sure I have seen it. I will say they are here, we are not. It is not, they are not, he was not, she does not, we did not.',
      );
    });

    it('keeps the capital at the start of a sentence and all capitals when shouted', () => {
      expect(applyFormality("Don't go. Let's stay. It's fine.", 'formal')).toBe(
        'Do not go. Let us stay. It is fine.',
      );
      expect(applyFormality("I said DON'T.", 'formal')).toBe('I said DO NOT.');
    });

    it('expands contractions written with a typographic apostrophe', () => {
      expect(applyFormality('We don’t know.', 'formal')).toBe('We do not know.');
    });

    it('leaves words that only contain a contraction alone', () => {
      expect(applyFormality("The cat's toy isn't hers; Ahab's whale.", 'formal')).toBe(
        "The cat's toy is not hers; Ahab's whale.",
      );
    });

    it('capitalises the first letter of each sentence', () => {
      expect(
        applyFormality('the whale rose. it was white! was it? "yes," he said.', 'formal'),
      ).toBe('The whale rose. It was white! Was it? "Yes," he said.');
    });

    it('collapses runs of whitespace, line breaks included', () => {
      expect(applyFormality('  Call   me\n\n Ishmael.  ', 'formal')).toBe('Call me Ishmael.');
    });

    it('ends with a full stop when the text has no terminal punctuation', () => {
      expect(applyFormality('call me Ishmael', 'formal')).toBe('Call me Ishmael.');
      expect(applyFormality('and the sea rolled on,', 'formal')).toBe('And the sea rolled on.');
      expect(applyFormality('Is it?', 'formal')).toBe('Is it?');
      expect(applyFormality('He said "Go."', 'formal')).toBe('He said "Go."');
    });

    it('leaves empty text empty', () => {
      expect(applyFormality('   ', 'formal')).toBe('');
    });
  });

  describe('casual', () => {
    it('contracts the common negations', () => {
      expect(
        applyFormality(
          'I do not know, it is not here, we cannot stay and will not wait.',
          'casual',
        ),
      ).toBe("I don't know, it isn't here, we can't stay and won't wait.");
    });

    it('contracts pronoun forms before another word, keeping the case', () => {
      expect(
        applyFormality('I am sure. You are right and It is late. They will go.', 'casual'),
      ).toBe("I'm sure. You're right and It's late. They'll go.");
    });

    it('leaves a pronoun form at the end of a clause, where a contraction would be wrong', () => {
      expect(applyFormality('I know where it is. Here you are.', 'casual')).toBe(
        'I know where it is. Here you are.',
      );
    });

    it('leaves "let us" alone, since "let us know" is not "let\'s know"', () => {
      expect(applyFormality('Please let us know.', 'casual')).toBe('Please let us know.');
    });

    it('collapses runs of whitespace', () => {
      expect(applyFormality('  so   it\n goes ', 'casual')).toBe('so it goes');
    });
  });

  it('returns the text unchanged for any other formality', () => {
    const text = "  I don't   know  ";
    for (const formality of [undefined, null, 'neutral', 3, { level: 'formal' }]) {
      expect(applyFormality(text, formality)).toBe(text);
    }
  });

  it('reads the formality word regardless of case', () => {
    expect(applyFormality("don't", 'Formal')).toBe('Do not.');
  });
});
