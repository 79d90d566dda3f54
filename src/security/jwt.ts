import { createSecretKey, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { LRUCache } from 'lru-cache';
import { ROLES, type Role } from '../domains/user/role';

export interface TokenClaims {
  readonly sub: string;
  readonly role: Role;
  readonly iat: number;
  readonly exp: number;
}

export interface IssuedToken {
  readonly token: string;
  readonly expiresAt: Date;
}

export class TokenError extends Error {
  override readonly name = 'TokenError';
}

/** HS256 tokens: `sub` is the user id, `role` the role at issue time (re-checked per request). */
export class JwtService {
  private readonly key: KeyObject;
  /**
   * Tokens already verified, with their claims: a client sends the same token with every
   * request, and checking its signature again costs more than the rest of authentication.
   * Bounded, and each entry is dropped at the token's expiry (checked at every use too).
   */
  private readonly verified = new LRUCache<string, TokenClaims>({ max: 10_000 });

  constructor(
    secret: string,
    private readonly ttlSeconds: number,
  ) {
    this.key = createSecretKey(Buffer.from(secret, 'utf8'));
  }

  issue(userId: string, role: Role): IssuedToken {
    const now = Math.floor(Date.now() / 1000);
    const exp = now + this.ttlSeconds;
    const token = jwt.sign({ sub: userId, role, iat: now, exp }, this.key, {
      algorithm: 'HS256',
    });
    return { token, expiresAt: new Date(exp * 1000) };
  }

  /** Throws {@link TokenError} with a reason a client can act on. */
  verify(token: string): TokenClaims {
    const known = this.verified.get(token);
    if (known) {
      if (Math.floor(Date.now() / 1000) >= known.exp) {
        this.verified.delete(token);
        throw new TokenError('Token expired');
      }
      return known;
    }
    const claims = this.check(token);
    const secondsLeft = claims.exp - Math.floor(Date.now() / 1000);
    if (secondsLeft > 0) {
      this.verified.set(token, claims, { ttl: secondsLeft * 1000 });
    }
    return claims;
  }

  private check(token: string): TokenClaims {
    let payload: string | jwt.JwtPayload;
    try {
      payload = jwt.verify(token, this.key, { algorithms: ['HS256'] });
    } catch (error) {
      if (error instanceof jwt.TokenExpiredError) {
        throw new TokenError('Token expired');
      }
      throw new TokenError('Invalid token');
    }
    if (
      typeof payload !== 'object' ||
      typeof payload.sub !== 'string' ||
      typeof payload.iat !== 'number' ||
      typeof payload.exp !== 'number' ||
      !ROLES.includes(payload.role as Role)
    ) {
      throw new TokenError('Invalid token');
    }
    return { sub: payload.sub, role: payload.role as Role, iat: payload.iat, exp: payload.exp };
  }
}

/** `Bearer <token>` or a bare token; undefined when none was sent. */
export function extractBearer(header: unknown): string | undefined {
  if (typeof header !== 'string' || header.trim() === '') {
    return undefined;
  }
  const match = /^Bearer\s+(.+)$/i.exec(header.trim());
  return (match ? match[1] : header).trim();
}
