import jwt from 'jsonwebtoken';
import { describe, expect, it } from 'vitest';
import { Role } from '../../../src/domains/user/role';
import { JwtService, TokenError, extractBearer } from '../../../src/security/jwt';

const SECRET = 'a-secret-of-at-least-thirty-two-bytes!!';

describe('JwtService', () => {
  const service = new JwtService(SECRET, 3600);

  it('issues HS256 tokens carrying sub, role, iat and exp', () => {
    const { token, expiresAt } = service.issue('user-1', Role.MODEL_DEVELOPER);
    const claims = service.verify(token);
    expect(claims).toMatchObject({ sub: 'user-1', role: 'MODEL_DEVELOPER' });
    expect(claims.exp - claims.iat).toBe(3600);
    expect(expiresAt.getTime()).toBe(claims.exp * 1000);
    expect(jwt.decode(token, { complete: true })!.header.alg).toBe('HS256');
  });

  it('refuses expired, tampered, foreign and alg-none tokens', () => {
    const now = Math.floor(Date.now() / 1000);
    const expired = jwt.sign({ sub: 'u', role: 'USER', iat: now - 100, exp: now - 10 }, SECRET);
    expect(() => service.verify(expired)).toThrow('Token expired');
    const foreign = jwt.sign({ sub: 'u', role: 'USER' }, 'another-secret-of-thirty-two-bytes!!!', {
      expiresIn: 60,
    });
    expect(() => service.verify(foreign)).toThrow(TokenError);
    const none = jwt.sign({ sub: 'u', role: 'ADMIN' }, '', { algorithm: 'none', expiresIn: 60 });
    expect(() => service.verify(none)).toThrow(TokenError);
    const [h, , s] = service.issue('u', Role.USER).token.split('.');
    const forged = `${h}.${Buffer.from(JSON.stringify({ sub: 'u', role: 'ADMIN', iat: now, exp: now + 60 })).toString('base64url')}.${s}`;
    expect(() => service.verify(forged)).toThrow(TokenError);
  });

  it('refuses tokens without a known role or without exp', () => {
    const noRole = jwt.sign({ sub: 'u', role: 'ROOT' }, SECRET, { expiresIn: 60 });
    expect(() => service.verify(noRole)).toThrow('Invalid token');
    const noExp = jwt.sign({ sub: 'u', role: 'USER' }, SECRET);
    expect(() => service.verify(noExp)).toThrow('Invalid token');
  });

  it('refuses a token it accepted before once that token has expired', async () => {
    const short = new JwtService(SECRET, 3600);
    const now = Math.floor(Date.now() / 1000);
    const token = jwt.sign({ sub: 'u', role: 'USER', iat: now, exp: now + 1 }, SECRET);
    expect(short.verify(token).sub).toBe('u');
    expect(short.verify(token).sub).toBe('u');
    await new Promise((resolve) => setTimeout(resolve, (now + 1) * 1000 - Date.now() + 50));
    expect(() => short.verify(token)).toThrow('Token expired');
  });

  it('reads Bearer headers and bare tokens', () => {
    expect(extractBearer('Bearer abc')).toBe('abc');
    expect(extractBearer('bearer   abc ')).toBe('abc');
    expect(extractBearer('abc')).toBe('abc');
    expect(extractBearer('')).toBeUndefined();
    expect(extractBearer(undefined)).toBeUndefined();
  });
});
