import { allow, deny } from 'graphql-shield';
import { describe, expect, it } from 'vitest';
import { RULES, mergeRules } from '../../../src/graphql/permissions';

describe('permission rules', () => {
  it('merge per-domain maps field by field', () => {
    const merged = mergeRules({ Query: { a: allow } }, { Query: { b: deny }, T: allow });
    expect(merged).toEqual({ Query: { a: allow, b: deny }, T: allow });
  });

  it('refuse two domains ruling the same field', () => {
    expect(() => mergeRules({ Query: { a: allow } }, { Query: { a: deny } })).toThrow('Query.a');
    expect(() => mergeRules({ T: allow }, { T: { a: allow } })).toThrow('type T');
  });

  it('open to anonymous callers only login and me', () => {
    const open = Object.entries(RULES as Record<string, Record<string, unknown>>)
      .filter(([type]) => ['Query', 'Mutation', 'Subscription'].includes(type))
      .flatMap(([type, fields]) =>
        Object.entries(fields)
          .filter(([, r]) => r === allow)
          .map(([f]) => `${type}.${f}`),
      );
    expect(open.sort()).toEqual(['Mutation.login', 'Query.me']);
  });
});
