import { describe, expect, it } from 'vitest';
import {
  findSecretPaths,
  isSecretKey,
  serializedSize,
  stripSecretPaths,
} from '../../../src/domains/context/context.guards';

describe('isSecretKey', () => {
  it.each([
    // Fragments, matched anywhere in the key.
    ['password', true],
    ['passwd', true],
    ['passphrase', true],
    ['secret', true],
    ['apikey', true],
    ['credential', true],
    ['privatekey', true],
    ['accesskey', true],
    ['secretkey', true],
    ['clientsecret', true],
    ['db_password', true],
    ['Password', true],
    ['PASSWORD_HASH', true],
    ['API-Key', true],
    ['api_key', true],
    ['apiKey', true],
    ['stripeApiKey', true],
    ['private_key', true],
    ['AWS-Access-Key-Id', true],
    ['aws_secret_key', true],
    ['clientSecret', true],
    ['credentials', true],
    ['secretary', true], // deliberate false positive: better to refuse than store a credential
    // A "token" suffix.
    ['token', true],
    ['Token', true],
    ['accessToken', true],
    ['auth_token', true],
    ['refresh-token', true],
    ['id_token', true],
    ['x-auth-token', true],
    ['csrfToken', true],
    // Whole names.
    ['auth', true],
    ['Auth', true],
    ['authorization', true],
    ['Authorization', true],
    ['bearer', true],
    ['cookie', true],
    ['Cookie', true],
    ['pwd', true],
    ['sessionid', true],
    ['session_id', true],
    ['Session-ID', true],
    ['jwt', true],
    ['JWT', true],
    // Model settings and ordinary fields that only look close.
    ['maxTokens', false],
    ['max_tokens', false],
    ['tokenCount', false],
    ['tokens', false],
    ['tokenizer', false],
    ['author', false],
    ['authorName', false],
    ['authored_at', false],
    ['cookieConsent', false],
    ['jwtIssuer', false],
    ['session', false],
    ['language', false],
    ['creativity', false],
    ['key', false],
    ['keywords', false],
    ['', false],
  ])('classifies %j as secret: %s', (key, secret) => {
    expect(isSecretKey(key)).toBe(secret);
  });
});

describe('findSecretPaths', () => {
  it('reports secret keys at any depth, in document order, with dotted and indexed paths', () => {
    const value = {
      language: 'fr',
      service: { url: 'https://example.test', api_key: 'sk-123' },
      list: [{ name: 'a' }, 'plain', { password: 'hunter2', ok: 1 }],
      matrix: [[{ token: 't' }]],
      clientSecret: 's',
    };
    expect(findSecretPaths(value, 'customAttributes')).toEqual([
      'customAttributes.service.api_key',
      'customAttributes.list[2].password',
      'customAttributes.matrix[0][0].token',
      'customAttributes.clientSecret',
    ]);
  });

  it('reports a secret key once and does not search the value it holds', () => {
    expect(findSecretPaths({ credentials: { password: 'x', token: 'y' } }, 'c')).toEqual([
      'c.credentials',
    ]);
  });

  it('starts paths at the key itself when the base path is empty', () => {
    expect(findSecretPaths({ a: { token: 1 } }, '')).toEqual(['a.token']);
    expect(findSecretPaths([{ jwt: 1 }], 'items')).toEqual(['items[0].jwt']);
  });

  it('finds nothing in values that are not objects', () => {
    for (const value of ['password', 42, true, null, undefined]) {
      expect(findSecretPaths(value, 'x')).toEqual([]);
    }
  });

  it('stops looking below 64 levels instead of overflowing the stack', () => {
    let deep: unknown = { password: 'buried' };
    for (let level = 0; level < 100_000; level++) {
      deep = { next: deep };
    }
    expect(findSecretPaths(deep, 'x')).toEqual([]);

    const nested = (levels: number): unknown => {
      let value: unknown = { password: 'x' };
      for (let level = 0; level < levels; level++) {
        value = { n: value };
      }
      return value;
    };
    expect(findSecretPaths(nested(64), 'x')).toEqual([`x${'.n'.repeat(64)}.password`]);
    expect(findSecretPaths(nested(65), 'x')).toEqual([]);
  });
});

describe('stripSecretPaths', () => {
  it('returns a copy without exactly the reported paths and leaves the input untouched', () => {
    const input = {
      language: 'fr',
      service: { url: 'https://example.test', api_key: 'sk-123' },
      list: [{ name: 'a' }, 'plain', { password: 'hunter2', ok: 1 }],
      maxTokens: 256,
    };
    const before = structuredClone(input);

    const { value, removed } = stripSecretPaths(input, 'customAttributes');

    expect(removed).toEqual(findSecretPaths(input, 'customAttributes'));
    expect(removed).toEqual([
      'customAttributes.service.api_key',
      'customAttributes.list[2].password',
    ]);
    expect(value).toEqual({
      language: 'fr',
      service: { url: 'https://example.test' },
      list: [{ name: 'a' }, 'plain', { ok: 1 }],
      maxTokens: 256,
    });
    expect(input).toEqual(before);
    expect(findSecretPaths(value, 'customAttributes')).toEqual([]);
  });

  it('returns a deep copy that shares no objects with the input', () => {
    const input = { a: { b: [{ c: 1 }] } };
    const { value } = stripSecretPaths(input, 'x') as { value: typeof input };
    value.a.b[0]!.c = 2;
    expect(input.a.b[0]!.c).toBe(1);
  });

  it('keeps a JSON "__proto__" key as data rather than as the copy\'s prototype', () => {
    const input: unknown = JSON.parse('{"__proto__": {"polluted": true}, "token": "t"}');
    const { value, removed } = stripSecretPaths(input, 'x');
    expect(removed).toEqual(['x.token']);
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(Object.keys(value as object)).toEqual(['__proto__']);
    expect((value as { polluted?: boolean }).polluted).toBeUndefined();
  });

  it('returns values that are not objects as they are', () => {
    expect(stripSecretPaths('password', 'x')).toEqual({ value: 'password', removed: [] });
    expect(stripSecretPaths(null, 'x')).toEqual({ value: null, removed: [] });
  });
});

describe('serializedSize', () => {
  it('counts the UTF-8 bytes of the JSON text', () => {
    expect(serializedSize('é')).toBe(4); // two quotes + 2 bytes
    expect(serializedSize({ a: 'é' })).toBe(Buffer.byteLength('{"a":"é"}', 'utf8'));
    expect(serializedSize({ a: 'é' })).toBe(10);
    expect(serializedSize('😀')).toBe(6);
    expect(serializedSize([1, 2])).toBe(5);
    expect(serializedSize(null)).toBe(4);
  });

  it('counts nothing for undefined, which stores nothing', () => {
    expect(serializedSize(undefined)).toBe(0);
  });
});
