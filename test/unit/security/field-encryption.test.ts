import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  DecryptionError,
  FieldEncryption,
  generateEncryptionKey,
  parseEncryptionKeys,
  type EncryptionKey,
} from '../../../src/security/field-encryption';

const AAD = 'contexts.user_data:8c1f0e2a';

function key(id: string): EncryptionKey {
  return { id, key: randomBytes(32) };
}

// Header (version, kid length, kid "old") then IV, tag and ciphertext.
const HEADER_BYTES = 2 + 'old'.length;

describe('FieldEncryption', () => {
  const oldKey = key('old');
  const encryption = new FieldEncryption([oldKey]);

  it('round-trips a string, a Buffer and a JSON value', () => {
    expect(encryption.decrypt(encryption.encrypt('héllo wörld', AAD), AAD).toString('utf8')).toBe(
      'héllo wörld',
    );
    const bytes = randomBytes(100);
    expect(encryption.decrypt(encryption.encrypt(bytes, AAD), AAD)).toEqual(bytes);
    const value = { language: 'fr', tags: ['a', 'b'], nested: { n: 1, ok: true, none: null } };
    expect(encryption.decryptJson(encryption.encryptJson(value, AAD), AAD)).toEqual(value);
    expect(encryption.decrypt(encryption.encrypt('', AAD), AAD)).toEqual(Buffer.alloc(0));
  });

  it('writes the documented layout: version, key id, 12-byte IV, 16-byte tag, ciphertext', () => {
    const blob = encryption.encrypt('abcd', AAD);
    expect(blob[0]).toBe(0x01);
    expect(blob[1]).toBe(3);
    expect(blob.subarray(2, 5).toString('utf8')).toBe('old');
    expect(blob.length).toBe(HEADER_BYTES + 12 + 16 + 4);
  });

  it('never stores the plaintext and encrypts the same input differently twice', () => {
    const plaintext = 'my favourite colour is blue';
    const first = encryption.encrypt(plaintext, AAD);
    const second = encryption.encrypt(plaintext, AAD);
    expect(first.includes(Buffer.from(plaintext))).toBe(false);
    expect(first.includes(Buffer.from('favourite'))).toBe(false);
    expect(first.equals(second)).toBe(false);
    expect(first.subarray(HEADER_BYTES, HEADER_BYTES + 12)).not.toEqual(
      second.subarray(HEADER_BYTES, HEADER_BYTES + 12),
    );
  });

  it('refuses to decrypt a blob under another row or column (wrong aad)', () => {
    const blob = encryption.encrypt('secret data', 'contexts.user_data:row-1');
    expect(() => encryption.decrypt(blob, 'contexts.user_data:row-2')).toThrow(DecryptionError);
    expect(() => encryption.decrypt(blob, 'contexts.session_data:row-1')).toThrow(DecryptionError);
    expect(() => encryption.decryptJson(blob, '')).toThrow(DecryptionError);
  });

  it('refuses to encrypt without aad, which would bind the blob to nothing', () => {
    expect(() => encryption.encrypt('x', '')).toThrow(TypeError);
  });

  it('detects a single flipped byte anywhere in the blob', () => {
    const blob = encryption.encrypt('a short but sensitive value', AAD);
    for (let index = 0; index < blob.length; index++) {
      const tampered = Buffer.from(blob);
      tampered[index]! ^= 0x01;
      expect(() => encryption.decrypt(tampered, AAD), `byte ${index}`).toThrow(DecryptionError);
    }
  });

  it('refuses truncated and foreign blobs with a DecryptionError', () => {
    const blob = encryption.encrypt('value', AAD);
    for (const bad of [
      Buffer.alloc(0),
      Buffer.from([0x01]),
      Buffer.from([0x02, 0x00]),
      blob.subarray(0, HEADER_BYTES + 12 + 15),
      blob.subarray(0, blob.length - 1),
      Buffer.from('{"plain":"json"}'),
    ]) {
      expect(() => encryption.decrypt(bad, AAD)).toThrow(DecryptionError);
    }
    expect(() => encryption.keyIdOf(Buffer.from('plain'))).toThrow(DecryptionError);
  });

  it('still decrypts blobs from an old key after a new key is put first, and encrypts with the new one', () => {
    const oldBlob = encryption.encryptJson({ n: 1 }, AAD);
    const rotated = new FieldEncryption([key('new'), oldKey]);

    expect(rotated.currentKeyId).toBe('new');
    expect(rotated.keyIdOf(oldBlob)).toBe('old');
    expect(rotated.decryptJson(oldBlob, AAD)).toEqual({ n: 1 });

    const newBlob = rotated.encryptJson({ n: 1 }, AAD);
    expect(rotated.keyIdOf(newBlob)).toBe('new');
    expect(() => encryption.decrypt(newBlob, AAD)).toThrow(DecryptionError);
  });

  it('refuses a blob whose key id it does not have, naming the key id', () => {
    const retired = new FieldEncryption([key('retired')]).encrypt('x', AAD);
    expect(() => encryption.decrypt(retired, AAD)).toThrow(DecryptionError);
    expect(() => encryption.decrypt(retired, AAD)).toThrow(/unknown key "retired"/);
  });

  it('reports DecryptionError by name for logs and error masking', () => {
    expect(new DecryptionError('x').name).toBe('DecryptionError');
    expect(new DecryptionError('x')).toBeInstanceOf(Error);
  });

  it('refuses to be built without keys, with a short key or with a repeated key id', () => {
    expect(() => new FieldEncryption([])).toThrow();
    expect(() => new FieldEncryption([{ id: 'a', key: randomBytes(16) }])).toThrow();
    expect(() => new FieldEncryption([key('a'), key('a')])).toThrow();
  });

  it('keeps its own copy of each key, so a caller zeroing its buffer breaks nothing', () => {
    const material = key('mine');
    const owned = new FieldEncryption([material]);
    const blob = owned.encrypt('value', AAD);
    material.key.fill(0);
    expect(owned.decrypt(blob, AAD).toString()).toBe('value');
  });

  it('refuses to encrypt a value JSON cannot represent', () => {
    expect(() => encryption.encryptJson(undefined, AAD)).toThrow(TypeError);
  });
});

describe('parseEncryptionKeys', () => {
  const a = randomBytes(32);
  const b = randomBytes(32);

  it('reads a comma-separated list in order, tolerating whitespace', () => {
    const keys = parseEncryptionKeys(` k2:${b.toString('base64')} ,\n k1:${a.toString('base64')} `);
    expect(keys.map((k) => k.id)).toEqual(['k2', 'k1']);
    expect(keys[0]!.key).toEqual(b);
    expect(keys[1]!.key).toEqual(a);
  });

  it('accepts url-safe and unpadded base64', () => {
    // 0xfb 0xff… encodes with both '+' and '/' in standard base64.
    const awkward = Buffer.alloc(32, 0xfb);
    awkward[1] = 0xff;
    expect(awkward.toString('base64')).toMatch(/[+/]/);
    const [key] = parseEncryptionKeys(`web_key-1:${awkward.toString('base64url')}`);
    expect(key!.key).toEqual(awkward);
  });

  const good = a.toString('base64');
  const short = randomBytes(16).toString('base64');
  const long = randomBytes(33).toString('base64');
  it.each([
    ['an empty spec', '', /none given/],
    ['a blank spec', '   ', /none given/],
    ['an empty item', `k1:${good},,k2:${good}`, /item 2 is empty/],
    ['an item without a colon', good, /item 1 has no ':'/],
    ['a 16-byte key', `k1:${good},short:${short}`, /item 2 \(key id "short"\)/],
    ['a 33-byte key', `long:${long}`, /item 1 \(key id "long"\)/],
    ['a key that is not base64', `k1:${good.slice(0, 20)}!!${good.slice(22)}`, /key id "k1"/],
    ['an empty key id', `:${good}`, /item 1 has a key id/],
    ['a key id with a dot', `k.1:${good}`, /item 1 has a key id/],
    ['a key id over 32 characters', `${'k'.repeat(33)}:${good}`, /item 1 has a key id/],
    ['a repeated key id', `k1:${good},k1:${b.toString('base64')}`, /item 2 repeats key id "k1"/],
  ])('refuses %s without echoing the key material', (_case, spec, message) => {
    let error: unknown;
    try {
      parseEncryptionKeys(spec);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(Error);
    const text = (error as Error).message;
    expect(text).toMatch(message);
    for (const material of [good, b.toString('base64'), short, long]) {
      expect(text).not.toContain(material);
      expect(text).not.toContain(material.slice(0, 12));
    }
  });

  it('does not echo a swapped "key:kid" item, whose key id position holds the key', () => {
    expect(() => parseEncryptionKeys(`${good}:k1`)).toThrow(/item 1 has a key id/);
    expect(() => parseEncryptionKeys(`${good}:k1`)).not.toThrow(good.slice(0, 12));
  });
});

describe('generateEncryptionKey', () => {
  it('produces a spec item that parses to a fresh 32-byte key', () => {
    const spec = generateEncryptionKey('rotated-2025');
    const [parsed] = parseEncryptionKeys(spec);
    expect(parsed!.id).toBe('rotated-2025');
    expect(parsed!.key).toHaveLength(32);
    expect(parseEncryptionKeys(generateEncryptionKey('rotated-2025'))[0]!.key).not.toEqual(
      parsed!.key,
    );
  });

  it('names the key after the current time by default, and the key works', () => {
    const keys = parseEncryptionKeys(generateEncryptionKey());
    expect(keys[0]!.id).toMatch(/^k[0-9a-z]+$/);
    const encryption = new FieldEncryption(keys);
    expect(encryption.decrypt(encryption.encrypt('ok', AAD), AAD).toString()).toBe('ok');
  });

  it('refuses a key id that would not parse back', () => {
    expect(() => generateEncryptionKey('has space')).toThrow();
  });
});
