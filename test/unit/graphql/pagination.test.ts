import { describe, expect, it } from 'vitest';
import { decodeCursor, encodeCursor, pageSize, toPage } from '../../../src/graphql/pagination';

describe('pagination', () => {
  it('round-trips keyset values through opaque cursors', () => {
    const cursor = encodeCursor(['2026-01-01T00:00:00.000Z', 'id-1']);
    expect(cursor).toMatch(/^[\w-]+$/);
    expect(decodeCursor(cursor, 2)).toEqual(['2026-01-01T00:00:00.000Z', 'id-1']);
  });

  it.each([
    '',
    'not base64 at all %',
    encodeCursor(['only one']),
    Buffer.from('{"a":1}').toString('base64url'),
  ])('refuses the malformed cursor %j with BAD_USER_INPUT', (cursor) => {
    expect(() => decodeCursor(cursor, 2)).toThrow(
      expect.objectContaining({ code: 'BAD_USER_INPUT' }),
    );
  });

  it('bounds the page size', () => {
    expect(pageSize(undefined, 20, 100)).toBe(20);
    expect(pageSize(100, 20, 100)).toBe(100);
    expect(() => pageSize(101, 20, 100)).toThrow('between 0 and 100');
    expect(() => pageSize(-1, 20, 100)).toThrow('between 0 and 100');
  });

  it('tells from one extra row whether another page follows', () => {
    const page = toPage([1, 2, 3], 2, String, false);
    expect(page.edges.map((e) => e.node)).toEqual([1, 2]);
    expect(page.pageInfo).toMatchObject({ hasNextPage: true, startCursor: '1', endCursor: '2' });
    expect(toPage([1], 2, String, true).pageInfo).toMatchObject({
      hasNextPage: false,
      hasPreviousPage: true,
    });
  });
});
