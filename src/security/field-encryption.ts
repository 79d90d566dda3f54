import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/**
 * AES-256-GCM encryption of single fields at rest (PostgreSQL `bytea`), with the key id
 * inside each blob so keys rotate without downtime: the first key encrypts, every
 * configured key decrypts, and a background job re-encrypts rows still on an old key.
 *
 * Blob layout:
 * ```
 * [0x01 version][n = kid length][kid, n bytes utf8][IV, 12 bytes][auth tag, 16 bytes][ciphertext]
 * ```
 */
export interface EncryptionKey {
  readonly id: string;
  /** Exactly 32 bytes. */
  readonly key: Buffer;
}

const FORMAT_VERSION = 0x01;
const KEY_BYTES = 32;
// 96-bit IVs are the size GCM is specified for (NIST SP 800-38D §8.2); other sizes get hashed.
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_ID_PATTERN = /^[A-Za-z0-9_-]{1,32}$/;
// Either base64 alphabet, optionally padded; Buffer.from would otherwise skip junk silently.
const BASE64_PATTERN = /^[A-Za-z0-9+/_-]+={0,2}$/;

/**
 * Parses `kid1:base64key,kid2:base64key` (standard or url-safe base64 of 32 bytes).
 * The first key is the one new data is encrypted with.
 *
 * Error messages name the item's position (1-based) or a valid key id, never the key
 * material, so a bad deployment can be diagnosed from logs without leaking the key.
 * A malformed key id is not echoed either: a swapped `key:kid` would put the key there.
 */
export function parseEncryptionKeys(spec: string): EncryptionKey[] {
  const items = spec.split(',').map((item) => item.trim());
  if (items.length === 1 && items[0] === '') {
    throw new Error('Encryption keys: none given; expected "kid:base64key[,kid:base64key…]"');
  }
  const keys: EncryptionKey[] = [];
  const seen = new Set<string>();
  items.forEach((item, index) => {
    const position = `item ${index + 1}`;
    if (item === '') {
      throw new Error(`Encryption keys: ${position} is empty`);
    }
    const colon = item.indexOf(':');
    if (colon < 0) {
      throw new Error(`Encryption keys: ${position} has no ':' between key id and key`);
    }
    const id = item.slice(0, colon).trim();
    const encoded = item.slice(colon + 1).trim();
    if (!KEY_ID_PATTERN.test(id)) {
      throw new Error(
        `Encryption keys: ${position} has a key id that does not match ${KEY_ID_PATTERN}`,
      );
    }
    if (seen.has(id)) {
      throw new Error(`Encryption keys: ${position} repeats key id "${id}"`);
    }
    const key = decodeBase64(encoded);
    if (key?.length !== KEY_BYTES) {
      throw new Error(
        `Encryption keys: ${position} (key id "${id}") is not base64 of exactly ${KEY_BYTES} bytes`,
      );
    }
    seen.add(id);
    keys.push({ id, key });
  });
  return keys;
}

function decodeBase64(encoded: string): Buffer | undefined {
  if (!BASE64_PATTERN.test(encoded)) {
    return undefined;
  }
  return Buffer.from(encoded.replaceAll('-', '+').replaceAll('_', '/'), 'base64');
}

/**
 * A fresh key spec item, `kid:base64`, for `parseEncryptionKeys` (put it first to rotate).
 * @default id `k` + the current time in base 36, so newer ids sort later
 */
export function generateEncryptionKey(id = `k${Date.now().toString(36)}`): string {
  if (!KEY_ID_PATTERN.test(id)) {
    throw new Error(`Encryption key id must match ${KEY_ID_PATTERN}`);
  }
  return `${id}:${randomBytes(KEY_BYTES).toString('base64')}`;
}

/**
 * The blob cannot be decrypted: unknown key id, malformed, bound to other AAD, or tampered.
 * Deliberately one class with terse messages — telling an attacker which check failed helps
 * nobody else.
 */
export class DecryptionError extends Error {
  override readonly name = 'DecryptionError';
}

interface ParsedBlob {
  readonly keyId: string;
  readonly iv: Buffer;
  readonly tag: Buffer;
  readonly ciphertext: Buffer;
}

function parseBlob(blob: Buffer): ParsedBlob {
  if (blob.length < 2 || blob[0] !== FORMAT_VERSION) {
    throw new DecryptionError('Unsupported encrypted field format');
  }
  const idLength = blob[1]!;
  const ivStart = 2 + idLength;
  const tagStart = ivStart + IV_BYTES;
  const ciphertextStart = tagStart + TAG_BYTES;
  if (idLength === 0 || blob.length < ciphertextStart) {
    throw new DecryptionError('Truncated encrypted field');
  }
  return {
    keyId: blob.subarray(2, ivStart).toString('utf8'),
    iv: blob.subarray(ivStart, tagStart),
    tag: blob.subarray(tagStart, ciphertextStart),
    ciphertext: blob.subarray(ciphertextStart),
  };
}

/**
 * Encrypts and decrypts single fields. `aad` names where the value lives (for example
 * `contexts.user_data:<row id>`) and is authenticated, not stored: a ciphertext copied to
 * another row or column fails to decrypt instead of disclosing or impersonating data.
 */
export class FieldEncryption {
  private readonly keys = new Map<string, Buffer>();
  private readonly current: string;

  constructor(keys: readonly EncryptionKey[]) {
    if (keys.length === 0) {
      throw new Error('FieldEncryption needs at least one key');
    }
    for (const { id, key } of keys) {
      if (!KEY_ID_PATTERN.test(id) || this.keys.has(id)) {
        throw new Error(`FieldEncryption: key ids must be unique and match ${KEY_ID_PATTERN}`);
      }
      if (key.length !== KEY_BYTES) {
        throw new Error(`FieldEncryption: key "${id}" is not ${KEY_BYTES} bytes`);
      }
      // A private copy: a caller zeroing or reusing its buffer must not change our key.
      this.keys.set(id, Buffer.from(key));
    }
    this.current = keys[0]!.id;
  }

  /** The key id new encryptions use. */
  get currentKeyId(): string {
    return this.current;
  }

  /** Strings are encoded as UTF-8. A fresh random IV per call, so equal inputs differ. */
  encrypt(plaintext: Buffer | string, aad: string): Buffer {
    if (aad === '') {
      // Without AAD the blob is valid in any row; refuse rather than silently lose binding.
      throw new TypeError('FieldEncryption.encrypt needs a non-empty aad');
    }
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.keys.get(this.current)!, iv, {
      authTagLength: TAG_BYTES,
    });
    cipher.setAAD(Buffer.from(aad, 'utf8'));
    const data = typeof plaintext === 'string' ? Buffer.from(plaintext, 'utf8') : plaintext;
    const ciphertext = Buffer.concat([cipher.update(data), cipher.final()]);
    const keyId = Buffer.from(this.current, 'utf8');
    return Buffer.concat([
      Buffer.from([FORMAT_VERSION, keyId.length]),
      keyId,
      iv,
      cipher.getAuthTag(),
      ciphertext,
    ]);
  }

  /** Throws {@link DecryptionError}; never returns unauthenticated bytes. */
  decrypt(blob: Buffer, aad: string): Buffer {
    const { keyId, iv, tag, ciphertext } = parseBlob(blob);
    const key = this.keys.get(keyId);
    if (!key) {
      throw new DecryptionError(
        KEY_ID_PATTERN.test(keyId)
          ? `Encrypted with unknown key "${keyId}"`
          : 'Encrypted field has a malformed key id',
      );
    }
    const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(aad, 'utf8'));
    decipher.setAuthTag(tag);
    try {
      return Buffer.concat([decipher.update(ciphertext), decipher.final()]);
    } catch {
      throw new DecryptionError('Encrypted field failed authentication');
    }
  }

  /** `JSON.stringify`, then {@link encrypt}; throws TypeError for values JSON cannot hold. */
  encryptJson(value: unknown, aad: string): Buffer {
    const json: string | undefined = JSON.stringify(value);
    if (json === undefined) {
      throw new TypeError('FieldEncryption.encryptJson: value has no JSON representation');
    }
    return this.encrypt(json, aad);
  }

  /** The caller vouches for `T`: the content is authenticated, not validated. */
  decryptJson<T = unknown>(blob: Buffer, aad: string): T {
    const json = this.decrypt(blob, aad).toString('utf8');
    try {
      return JSON.parse(json) as T;
    } catch {
      throw new DecryptionError('Encrypted field does not hold JSON');
    }
  }

  /** The id of the key that encrypted `blob`, known or not — rotation re-encrypts the rest. */
  keyIdOf(blob: Buffer): string {
    return parseBlob(blob).keyId;
  }
}
