import { createSecretKey, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
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
