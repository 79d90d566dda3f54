import { describe, expect, it } from 'vitest';
import { generatePassword, hashPassword, verifyPassword } from '../../../src/security/passwords';

describe('passwords', () => {
  it('verify against their own scrypt hash and no other password', async () => {
    const hash = await hashPassword('correct horse');
    expect(hash).toMatch(/^scrypt\$32768\$8\$1\$/);
    expect(await verifyPassword('correct horse', hash)).toBe(true);
    expect(await verifyPassword('correct horsE', hash)).toBe(false);
  });

  it('are salted: the same password hashes differently twice', async () => {
    expect(await hashPassword('same')).not.toBe(await hashPassword('same'));
  });

  it('never verify against a malformed stored hash', async () => {
    expect(await verifyPassword('x', 'plaintext')).toBe(false);
    expect(await verifyPassword('x', 'scrypt$1$2$3$$')).toBe(false);
  });

  it('are generated long and from an unambiguous alphabet', () => {
    const pw = generatePassword();
    expect(pw).toMatch(/^[A-HJ-NP-Za-km-z2-9]{24}$/);
    expect(generatePassword()).not.toBe(pw);
  });
});
